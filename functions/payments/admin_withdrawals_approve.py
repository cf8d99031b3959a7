"""POST /v1/admin/withdrawals/{id}/approve: the hold is pinned (held until the payout
answers) and the payout is queued (gateway-payouts), in one statement; its message is
sent right after."""

from ledgerline.http import Endpoint, Response
from ledgerline.ids import object_id
from ledgerline.payments import withdrawals

api = Endpoint(__name__)


@api
def approve_withdrawal(id: str) -> Response:
    withdrawal_id = str(object_id(id, "withdrawal"))
    response = api.money("withdrawal_approve", {"withdrawal_id": withdrawal_id})
    if response.status_code == 200:  # a replay finds the message sent, or sends what is left
        withdrawals.publish_payout(withdrawal_id)
    return response


handler = api.handler
