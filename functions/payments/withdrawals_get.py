"""GET /v1/withdrawals/{id}: one of the caller's withdrawals (administrators and auditors: anyone's)."""

from ledgerline.http import Endpoint, Response, json_response
from ledgerline.ledger.access import read_scope
from ledgerline.payments import withdrawals

api = Endpoint(__name__)


@api
def get_withdrawal(id: str) -> Response:
    scope = read_scope(api.request.require_principal())
    withdrawal = api.read(lambda cur: withdrawals.get_withdrawal(cur, id, viewer_id=scope))
    return json_response(withdrawal.to_json())


handler = api.handler
