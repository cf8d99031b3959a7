"""POST /v1/holds: reserve an amount on one of the caller's wallets (two-phase)."""

from ledgerline.http import Endpoint, Response
from ledgerline.ledger.holds import DEFAULT_EXPIRY_SECONDS
from ledgerline.ledger.schemas import CreateHold

api = Endpoint(__name__)


@api
def create_hold(body: CreateHold) -> Response:
    args = body.model_dump(mode="json")
    if args["expires_in_seconds"] is None:
        args["expires_in_seconds"] = DEFAULT_EXPIRY_SECONDS
    return api.money("hold_create", args)


handler = api.handler
