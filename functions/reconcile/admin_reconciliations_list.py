"""GET /v1/admin/reconciliations: the latest runs, newest first (administrators)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from ledgerline.http import Endpoint, Response, json_response
from ledgerline.reconciliation import admin

api = Endpoint(__name__)


@api
def list_reconciliations(limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Response:
    items = api.read(lambda cur: admin.runs(cur, limit))
    return json_response({"items": items})


handler = api.handler
