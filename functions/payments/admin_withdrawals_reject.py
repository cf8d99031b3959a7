"""POST /v1/admin/withdrawals/{id}/reject: the hold is released and the user told why."""

from ledgerline.http import Endpoint, Response
from ledgerline.ids import object_id
from ledgerline.payments.withdrawals import RejectWithdrawal

api = Endpoint(__name__)


@api
def reject_withdrawal(id: str, body: RejectWithdrawal) -> Response:
    return api.money("withdrawal_reject", {"withdrawal_id": str(object_id(id, "withdrawal")), "reason": body.reason})


handler = api.handler
