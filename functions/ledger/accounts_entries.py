"""GET /v1/accounts/{id}/entries: the account's entries, newest first, a page at a time."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from ledgerline import ledger
from ledgerline.http import Endpoint, Response, json_response
from ledgerline.ledger.access import read_scope

api = Endpoint(__name__)


@api
def list_entries(
    id: str, limit: Annotated[int | None, Query()] = None, cursor: Annotated[str | None, Query()] = None
) -> Response:
    scope = read_scope(api.request.require_principal())
    items, next_cursor = api.read(lambda cur: ledger.list_entries(cur, id, owner_id=scope, limit=limit, cursor=cursor))
    return json_response({"items": [e.to_json() for e in items], "next_cursor": next_cursor})


handler = api.handler
