"""POST /v1/admin/payouts/bulk/{id}/reject: refuse a bulk payout waiting for approval;
every item's hold is released, in one statement."""

from ledgerline.http import Endpoint, Response
from ledgerline.ids import object_id
from ledgerline.payments.withdrawals import RejectWithdrawal

api = Endpoint(__name__)


@api
def reject_bulk_payout(id: str, body: RejectWithdrawal) -> Response:
    bulk_id = str(object_id(id, "bulk payout"))
    return api.money("bulk_payout_reject", {"bulk_payout_id": bulk_id, "reason": body.reason})


handler = api.handler
