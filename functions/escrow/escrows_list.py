"""GET /v1/escrows: the escrows the caller buys or sells in, a page at a time."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from ledgerline.escrow import list_escrows
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def list_my_escrows(
    limit: Annotated[int | None, Query()] = None, cursor: Annotated[str | None, Query()] = None
) -> Response:
    principal = api.request.require_principal()
    items, next_cursor = api.read(lambda cur: list_escrows(cur, party_id=principal.id, limit=limit, cursor=cursor))
    return json_response({"items": [e.to_json() for e in items], "next_cursor": next_cursor})


handler = api.handler
