"""GET /v1/payout-accounts: the caller's payout accounts (numbers masked), newest first."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from ledgerline.http import Endpoint, Response, json_response
from ledgerline.payments import payout_accounts

api = Endpoint(__name__)


@api
def list_payout_accounts(
    limit: Annotated[int | None, Query(ge=1, le=200)] = None, cursor: str | None = None
) -> Response:
    owner = api.request.require_principal().id
    items, next_cursor = api.read(lambda cur: payout_accounts.list_accounts(cur, owner, limit=limit, cursor=cursor))
    return json_response({"items": [a.to_json() for a in items], "next_cursor": next_cursor})


handler = api.handler
