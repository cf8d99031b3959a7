"""PATCH /v1/invoices/{id}: change a PENDING invoice (its seller); audited with what changed."""

from ledgerline.http import Endpoint, Response, json_response
from ledgerline.ids import object_id
from ledgerline.invoices import store
from ledgerline.invoices.schemas import UpdateInvoice

api = Endpoint(__name__)


@api
def update_invoice(id: str, body: UpdateInvoice) -> Response:
    request = api.request
    invoice_id = object_id(id, "invoice")
    caller = request.require_principal()
    invoice = api.write(lambda cur: store.update(cur, caller, invoice_id, body, request.actor))
    return json_response(invoice.to_json())


handler = api.handler
