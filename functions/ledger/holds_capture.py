"""POST /v1/holds/{id}/capture: post all or part of an active hold to a wallet."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from ledgerline.http import Endpoint, Response
from ledgerline.ids import object_id
from ledgerline.ledger.schemas import CaptureHold

api = Endpoint(__name__)


@api
def capture_hold(id: str, body: Annotated[CaptureHold, Body()]) -> Response:
    return api.money("hold_capture", {"hold_id": str(object_id(id, "hold")), **body.model_dump(mode="json")})


handler = api.handler
