"""GET /v1/accounts: the caller's accounts, a page at a time."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from ledgerline import ledger
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def list_accounts(
    limit: Annotated[int | None, Query()] = None, cursor: Annotated[str | None, Query()] = None
) -> Response:
    principal = api.request.require_principal()
    items, next_cursor = api.read(
        lambda cur: ledger.list_accounts(cur, owner_id=principal.id, limit=limit, cursor=cursor)
    )
    return json_response({"items": [a.to_json() for a in items], "next_cursor": next_cursor})


handler = api.handler
