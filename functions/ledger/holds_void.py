"""POST /v1/holds/{id}/void: release an active hold; nothing moves (the reason is kept)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from ledgerline.http import Endpoint, Response
from ledgerline.ids import object_id
from ledgerline.ledger.schemas import VoidHold

api = Endpoint(__name__)


@api
def void_hold(id: str, body: Annotated[VoidHold | None, Body()] = None) -> Response:
    return api.money("hold_void", {"hold_id": str(object_id(id, "hold")), "reason": body.reason if body else None})


handler = api.handler
