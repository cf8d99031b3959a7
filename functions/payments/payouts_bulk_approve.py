"""POST /v1/admin/payouts/bulk/{id}/approve: one administrator's approval of a bulk payout
(two different ones above the two-person limit; never the requester); the last approval
queues every item's payout."""

from ledgerline.http import Endpoint, Response
from ledgerline.ids import object_id

api = Endpoint(__name__)


@api
def approve_bulk_payout(id: str) -> Response:
    return api.money("bulk_payout_approve", {"bulk_payout_id": str(object_id(id, "bulk payout"))})


handler = api.handler
