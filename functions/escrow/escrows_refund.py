"""POST /v1/escrows/{id}/refund: the seller gives the money back to the wallet that paid
it (FUNDED -> REFUNDED)."""

from ledgerline.escrow.requests import transition_args
from ledgerline.http import Endpoint, Response

api = Endpoint(__name__)


@api
def refund_escrow(id: str) -> Response:
    return api.money("escrow_refund", transition_args(id))


handler = api.handler
