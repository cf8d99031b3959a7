"""POST /v1/escrows/{id}/release: the buyer accepts; the seller is paid the amount less the
fee, in one transaction (FUNDED -> RELEASED)."""

from ledgerline.escrow.requests import transition_args
from ledgerline.http import Endpoint, Response

api = Endpoint(__name__)


@api
def release_escrow(id: str) -> Response:
    return api.money("escrow_release", transition_args(id))


handler = api.handler
