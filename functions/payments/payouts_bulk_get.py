"""GET /v1/payouts/bulk/{id}: one bulk payout with each item's status (its owner;
administrators and auditors: any)."""

from ledgerline.http import Endpoint, Response, json_response
from ledgerline.ledger.access import read_scope
from ledgerline.payments import bulk_payouts

api = Endpoint(__name__)


@api
def get_bulk_payout(id: str) -> Response:
    scope = read_scope(api.request.require_principal())
    found = api.read(lambda cur: bulk_payouts.get_bulk_payout(cur, id, viewer_id=scope))
    return json_response(found.to_json())


handler = api.handler
