"""POST /v1/admin/reconciliations: queue a run of a provider's day (administrators;
audited). Answers 201 with the queued run at once; the reconcile job does the work."""

from ledgerline.http import Endpoint, Response, json_response
from ledgerline.reconciliation import admin
from ledgerline.reconciliation.schemas import RunRequestBody

api = Endpoint(__name__)


@api
def create_reconciliation(body: RunRequestBody) -> Response:
    actor = api.request.actor
    run = api.write(lambda cur: admin.request_run(cur, body.provider, body.date, actor))
    return json_response(run, 201)


handler = api.handler
