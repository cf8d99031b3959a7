"""GET /v1/admin/reconciliations/{id}/discrepancies: what a run found (administrators)."""

from ledgerline.http import Endpoint, Response, json_response
from ledgerline.reconciliation import admin

api = Endpoint(__name__)


@api
def list_discrepancies(id: str) -> Response:
    items = api.read(lambda cur: admin.run_discrepancies(cur, id))
    return json_response({"items": items})


handler = api.handler
