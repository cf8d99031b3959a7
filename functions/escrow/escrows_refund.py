"""POST /v1/escrows/{id}/refund: the seller gives the money back to the wallet that paid
it (FUNDED -> REFUNDED)."""

from ledgerline.http import Endpoint, Response
from ledgerline.ids import object_id

api = Endpoint(__name__)


@api
def refund_escrow(id: str) -> Response:
    return api.money("escrow_refund", {"escrow_id": str(object_id(id, "escrow"))})


handler = api.handler
