"""GET /v1/activity: the caller's own events as plain sentences, newest first."""

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query

from ledgerline import activity
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def list_activity(
    category: Literal["auth", "financial", "invoices", "escrow", "admin"] | None = None,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
    cursor: str | None = None,
) -> Response:
    me = api.request.require_principal().id
    items, next_cursor = api.read(
        lambda cur: activity.list_activity(cur, me, category=category, limit=limit, cursor=cursor)
    )
    return json_response({"items": [i.to_json() for i in items], "next_cursor": next_cursor})


handler = api.handler
