"""POST /v1/escrows: open an escrow with the caller as its buyer (AWAITING_PAYMENT; nothing
moves until it is funded). Idempotent by its key, as the money routes are."""

from ledgerline.escrow.model import CreateEscrow
from ledgerline.http import Endpoint, Response

api = Endpoint(__name__)


@api
def create_escrow(body: CreateEscrow) -> Response:
    return api.money("escrow_open", body.model_dump(mode="json"))


handler = api.handler
