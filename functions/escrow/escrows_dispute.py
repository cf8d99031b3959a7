"""POST /v1/escrows/{id}/dispute: the buyer or the seller disputes a funded escrow within
the dispute window (FUNDED -> DISPUTED); an administrator resolves it."""

from ledgerline.config import settings
from ledgerline.escrow.model import DisputeEscrow
from ledgerline.http import Endpoint, Response
from ledgerline.ids import object_id

api = Endpoint(__name__)


@api
def dispute_escrow(id: str, body: DisputeEscrow) -> Response:
    return api.money(
        "escrow_dispute",
        {
            "escrow_id": str(object_id(id, "escrow")),
            "reason": body.reason,
            "dispute_window_days": settings().dispute_window_days,
        },
    )


handler = api.handler
