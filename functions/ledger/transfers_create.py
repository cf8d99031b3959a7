"""POST /v1/transfers: move money from one of the caller's accounts to a wallet.

Money-moving: Idempotency-Key required; a retry replays the stored response. Refusals
(insufficient funds, frozen account...) are audited as ``transfer.failed``.
"""

from ledgerline import ledger
from ledgerline.http import Endpoint
from ledgerline.ledger.model import USER_CREDITABLE_KINDS
from ledgerline.ledger.schemas import CreateTransfer
from ledgerline.ledger.transfers import record_failure
from ledgerline.money import parse_amount

api = Endpoint(__name__)


@api
def create_transfer(body: CreateTransfer):
    principal = api.request.require_principal()
    actor = api.request.actor

    def work(cur):
        transfer = ledger.transfer(
            cur,
            from_account_id=body.from_account_id,
            to_account_id=body.to_account_id,
            amount=parse_amount(body.amount, body.currency),
            currency=body.currency,
            description=body.description,
            actor=actor,
            owner_id=principal.id,
            credit_kinds=USER_CREDITABLE_KINDS,
        )
        return transfer.to_json()

    request = body.model_dump(mode="json")
    return api.money(work, on_failure=lambda cur, err: record_failure(cur, actor, request, err))


handler = api.handler
