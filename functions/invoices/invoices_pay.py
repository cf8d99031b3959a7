"""POST /v1/invoices/{id}/pay: the buyer pays an invoice into a new escrow of its own, in
one statement (``invoice_pay``): 200 the Invoice, PAID, with its escrow_id."""

from ledgerline.http import Endpoint, Response
from ledgerline.ids import object_id
from ledgerline.invoices.schemas import PayInvoice

api = Endpoint(__name__)


@api
def pay_invoice(id: str, body: PayInvoice) -> Response:
    invoice_id = object_id(id, "invoice")
    return api.money("invoice_pay", {"invoice_id": str(invoice_id), **body.model_dump(mode="json")})


handler = api.handler
