"""POST /v1/holds/{id}/void: release an active hold; nothing moves."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from ledgerline import ledger
from ledgerline.http import Endpoint
from ledgerline.ledger.schemas import VoidHold

api = Endpoint(__name__)


@api
def void_hold(id: str, body: Annotated[VoidHold | None, Body()] = None):
    principal = api.request.require_principal()
    return api.money(
        lambda cur: ledger.void_hold(cur, id, actor=api.request.actor, owner_id=principal.id).to_json(), status=200
    )


handler = api.handler
