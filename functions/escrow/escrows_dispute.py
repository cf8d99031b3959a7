"""POST /v1/escrows/{id}/dispute: the buyer or the seller disputes a funded escrow within
the dispute window (FUNDED -> DISPUTED); an administrator resolves it."""

from ledgerline.escrow.model import DisputeEscrow
from ledgerline.escrow.requests import transition_args
from ledgerline.http import Endpoint, Response

api = Endpoint(__name__)


@api
def dispute_escrow(id: str, body: DisputeEscrow) -> Response:
    return api.money("escrow_dispute", transition_args(id, reason=body.reason))


handler = api.handler
