"""PATCH /v1/admin/reconciliation-discrepancies/{id}: explain or resolve a finding
(administrators; audited with before and after)."""

from ledgerline.http import Endpoint, Response, json_response
from ledgerline.reconciliation import admin
from ledgerline.reconciliation.schemas import DiscrepancyUpdateBody

api = Endpoint(__name__)


@api
def update_discrepancy(id: str, body: DiscrepancyUpdateBody) -> Response:
    actor = api.request.actor
    found = api.write(
        lambda cur: admin.set_status(
            cur, id, status=body.status, transaction_id=body.transaction_id, note=body.note, actor=actor
        )
    )
    return json_response(found)


handler = api.handler
