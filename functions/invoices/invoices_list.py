"""GET /v1/invoices: the caller's invoices, as seller or buyer (?role=), by status, newest first."""

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query

from ledgerline.http import Endpoint, Response, json_response
from ledgerline.invoices import store

api = Endpoint(__name__)


@api
def list_invoices(
    role: Literal["seller", "buyer"] | None = None,
    status: Literal["PENDING", "PAID", "CANCELLED", "OVERDUE"] | None = None,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
    cursor: str | None = None,
) -> Response:
    caller = api.request.require_principal()
    items, next_cursor = api.read(
        lambda cur: store.list_invoices(cur, caller, role=role, status=status, limit=limit, cursor=cursor)
    )
    return json_response({"items": [i.to_json() for i in items], "next_cursor": next_cursor})


handler = api.handler
