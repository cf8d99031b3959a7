"""POST /v1/invoices: bill a buyer; the caller is the seller. 201 the Invoice (PENDING)."""

from ledgerline.http import Endpoint, Response, json_response
from ledgerline.invoices import store
from ledgerline.invoices.schemas import CreateInvoice

api = Endpoint(__name__)


@api
def create_invoice(body: CreateInvoice) -> Response:
    request = api.request
    caller = request.require_principal()
    invoice = api.write(lambda cur: store.create(cur, caller, body, request.actor))
    return json_response(invoice.to_json(), 201)


handler = api.handler
