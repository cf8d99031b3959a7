"""GET /v1/me/sessions: the caller's open sessions (devices)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from ledgerline.auth import sessions
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def list_my_sessions(limit: Annotated[int | None, Query(ge=1, le=200)] = None, cursor: str | None = None) -> Response:
    principal = api.request.require_principal()
    items, next_cursor = api.read(lambda cur: sessions.list_sessions(cur, principal, limit=limit, cursor=cursor))
    return json_response({"items": [s.to_json() for s in items], "next_cursor": next_cursor})


handler = api.handler
