"""GET /v1/admin/users: every user, newest first (administrators)."""

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query

from ledgerline.auth import users
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def list_users(
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
    cursor: str | None = None,
    role: Literal["user", "merchant", "admin", "auditor"] | None = None,
    status: Literal["active", "suspended"] | None = None,
    email: str | None = None,
) -> Response:
    items, next_cursor = api.read(
        lambda cur: users.list_users(cur, limit=limit, cursor=cursor, role=role, status=status, email=email)
    )
    return json_response({"items": [u.to_json() for u in items], "next_cursor": next_cursor})


handler = api.handler
