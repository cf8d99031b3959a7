"""POST /v1/admin/adjustments: a manual, audited movement between an account and its
currency's adjustments system account (administrators; Idempotency-Key required)."""

from ledgerline import ledger
from ledgerline.http import Endpoint
from ledgerline.ledger.model import money_json
from ledgerline.ledger.schemas import CreateAdjustment
from ledgerline.money import parse_amount

api = Endpoint(__name__)


@api
def create_adjustment(body: CreateAdjustment):
    def work(cur):
        amount = parse_amount(body.amount, body.currency)
        t = ledger.adjust(
            cur,
            account_id=body.account_id,
            amount=amount,
            currency=body.currency,
            direction=body.direction,
            reason=body.reason,
            actor=api.request.actor,
        )
        return {
            "transaction_id": t.id,
            "account_id": body.account_id,
            "amount": money_json(amount, body.currency),
            "direction": body.direction,
            "reason": body.reason,
            "created_at": t.created_at,
        }

    return api.money(work)


handler = api.handler
