"""DELETE /v1/invoices/{id}: withdraw an unpaid invoice (its seller): soft, CANCELLED, audited."""

from ledgerline.http import Endpoint, Response
from ledgerline.ids import object_id
from ledgerline.invoices import store

api = Endpoint(__name__)


@api
def delete_invoice(id: str) -> Response:
    request = api.request
    invoice_id = object_id(id, "invoice")
    caller = request.require_principal()
    api.write(lambda cur: store.delete(cur, caller, invoice_id, request.actor))
    return Response(status_code=204)


handler = api.handler
