"""GET /v1/payments/{id}: one of the caller's payments, with its checkout while pending."""

from ledgerline.http import Endpoint, Response, json_response
from ledgerline.ledger.access import read_scope
from ledgerline.payments import store

api = Endpoint(__name__)


@api
def get_payment(id: str) -> Response:
    scope = read_scope(api.request.require_principal())
    payment = api.read(lambda cur: store.get_payment(cur, id, viewer_id=scope))
    return json_response(payment.to_json())


handler = api.handler
