"""POST /v1/admin/transactions/{id}/reverse: post the mirror transaction (once)."""

from ledgerline.http import Endpoint, Response
from ledgerline.ids import object_id
from ledgerline.ledger.schemas import ReverseTransaction

api = Endpoint(__name__)


@api
def reverse_transaction(id: str, body: ReverseTransaction) -> Response:
    return api.money("reverse", {"transaction_id": str(object_id(id, "transaction")), "reason": body.reason})


handler = api.handler
