"""GET /v1/api-keys: the caller's API keys (prefix only, never the secret)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from ledgerline.auth import apikeys
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def list_api_keys(limit: Annotated[int | None, Query(ge=1, le=200)] = None, cursor: str | None = None) -> Response:
    principal = api.request.require_principal()
    items, next_cursor = api.read(lambda cur: apikeys.list_keys(cur, principal, limit=limit, cursor=cursor))
    return json_response({"items": [k.to_json() for k in items], "next_cursor": next_cursor})


handler = api.handler
