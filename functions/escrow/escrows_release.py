"""POST /v1/escrows/{id}/release: the buyer accepts; the seller is paid the amount less the
fee, in one transaction (FUNDED -> RELEASED)."""

from ledgerline.http import Endpoint, Response
from ledgerline.ids import object_id

api = Endpoint(__name__)


@api
def release_escrow(id: str) -> Response:
    return api.money("escrow_release", {"escrow_id": str(object_id(id, "escrow"))})


handler = api.handler
