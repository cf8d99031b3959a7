"""GET /v1/accounts/{id}/balance?at=: the posted balance now or at a past instant."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from ledgerline import instants, ledger
from ledgerline.http import Endpoint, Response, json_response
from ledgerline.ledger.access import read_scope

api = Endpoint(__name__)


@api
def get_balance(
    id: str, at: Annotated[str | None, Query(description="RFC 3339 instant; default now")] = None
) -> Response:
    scope = read_scope(api.request.require_principal())
    when = instants.parse(at, "at") if at is not None else None
    report = api.write(lambda cur: ledger.query_balance(cur, id, at=when, owner_id=scope, actor=api.request.actor))
    return json_response(report)


handler = api.handler
