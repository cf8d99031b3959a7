"""POST /v1/admin/accounts/{id}/freeze: no money in or out until unfrozen."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from ledgerline import ledger
from ledgerline.http import Endpoint, Response, json_response
from ledgerline.ledger.schemas import ChangeAccountStatus

api = Endpoint(__name__)


@api
def freeze_account(id: str, body: Annotated[ChangeAccountStatus | None, Body()] = None) -> Response:
    reason = body.reason if body else None
    account = api.write(lambda cur: ledger.freeze(cur, id, actor=api.request.actor, reason=reason))
    return json_response(account.to_json())


handler = api.handler
