"""GET /v1/invoices/{id}: one invoice (its seller and buyer; administrators and auditors: any)."""

from ledgerline.http import Endpoint, Response, json_response
from ledgerline.invoices import store

api = Endpoint(__name__)


@api
def get_invoice(id: str) -> Response:
    caller = api.request.require_principal()
    invoice = api.read(lambda cur: store.get(cur, caller, id))
    return json_response(invoice.to_json())


handler = api.handler
