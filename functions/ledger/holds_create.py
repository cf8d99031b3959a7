"""POST /v1/holds: reserve an amount on one of the caller's wallets (two-phase)."""

from ledgerline import ledger
from ledgerline.http import Endpoint
from ledgerline.ledger.schemas import CreateHold
from ledgerline.money import parse_amount

api = Endpoint(__name__)


@api
def create_hold(body: CreateHold):
    principal = api.request.require_principal()

    def work(cur):
        hold = ledger.create_hold(
            cur,
            account_id=body.account_id,
            amount=parse_amount(body.amount, body.currency),
            currency=body.currency,
            expires_in_seconds=body.expires_in_seconds,
            description=body.description,
            actor=api.request.actor,
            owner_id=principal.id,
        )
        return hold.to_json()

    return api.money(work)


handler = api.handler
