"""POST /v1/holds/{id}/capture: post all or part of an active hold to a wallet."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from ledgerline import ledger
from ledgerline.http import Endpoint
from ledgerline.ledger.model import USER_CREDITABLE_KINDS
from ledgerline.ledger.schemas import CaptureHold
from ledgerline.money import parse_amount

api = Endpoint(__name__)


@api
def capture_hold(id: str, body: Annotated[CaptureHold, Body()]):
    principal = api.request.require_principal()

    def work(cur):
        current = ledger.get_hold(cur, id, owner_id=principal.id)
        hold, _ = ledger.capture_hold(
            cur,
            current.id,
            to_account_id=body.to_account_id,
            amount=None if body.amount is None else parse_amount(body.amount, current.currency),
            actor=api.request.actor,
            owner_id=principal.id,
            credit_kinds=USER_CREDITABLE_KINDS,
        )
        return hold.to_json()

    return api.money(work, status=200)


handler = api.handler
