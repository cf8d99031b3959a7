"""POST /v1/admin/transactions/{id}/reverse: post the mirror transaction (once)."""

from ledgerline import ledger
from ledgerline.http import Endpoint
from ledgerline.ledger.schemas import ReverseTransaction

api = Endpoint(__name__)


@api
def reverse_transaction(id: str, body: ReverseTransaction):
    def work(cur):
        reversal = ledger.reverse(cur, id, reason=body.reason, actor=api.request.actor)
        return {**reversal.to_json(), "reason": body.reason}

    return api.money(work)


handler = api.handler
