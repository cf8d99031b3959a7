"""POST /v1/admin/withdrawals/{id}/approve: the held amount moves to payout clearing and
the payout is queued (gateway-payouts), in one statement."""

from ledgerline.http import Endpoint, Response
from ledgerline.ids import object_id

api = Endpoint(__name__)


@api
def approve_withdrawal(id: str) -> Response:
    return api.money("withdrawal_approve", {"withdrawal_id": str(object_id(id, "withdrawal"))})


handler = api.handler
