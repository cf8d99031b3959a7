"""POST /v1/admin/payments/{id}/resolve: an administrator credits or fails a flagged
payment (the webhook, the gateway and the payment as created did not agree).

Money route (Idempotency-Key): one statement (``money_op`` 'payment_resolve') locks the
payment, posts the credit with the same unique reference a confirmed webhook would have
used (so it is never credited twice), changes its status and writes its audit row.
"""

from ledgerline.http import Endpoint, Response
from ledgerline.ids import object_id
from ledgerline.payments.schemas import ResolvePayment

api = Endpoint(__name__)


@api
def resolve_payment(id: str, body: ResolvePayment) -> Response:
    payment_id = object_id(id, "payment")
    return api.money("payment_resolve", {"payment_id": str(payment_id), **body.model_dump(mode="json")})


handler = api.handler
