"""POST /v1/admin/escrows/{id}/resolve: an administrator decides a dispute: the money goes
to the seller (less the fee) or back to the buyer (DISPUTED -> RESOLVED_*)."""

from ledgerline.escrow.model import ResolveDispute
from ledgerline.escrow.requests import transition_args
from ledgerline.http import Endpoint, Response

api = Endpoint(__name__)


@api
def resolve_dispute(id: str, body: ResolveDispute) -> Response:
    return api.money("escrow_resolve", transition_args(id, outcome=body.outcome, reason=body.reason))


handler = api.handler
