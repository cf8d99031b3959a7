"""POST /v1/topups: a pending payment into one of the caller's wallets, and the
gateway's checkout to pay it.

Money route (Idempotency-Key): the first statement claims the key and creates the
pending payment with its audit row (``money_op`` 'topup'); no money moves until the
gateway's confirmed webhook (``functions.webhooks.consume``). Only then is the gateway
asked for a checkout, keyed by the payment's id, so a retry that replays the stored
payment gets the same checkout (``ledgerline.payments.checkout``).
"""

from ledgerline import jsonutil
from ledgerline.http import Endpoint, Response, json_response
from ledgerline.payments.checkout import open_checkout
from ledgerline.payments.model import Payment
from ledgerline.payments.schemas import CreateTopup

api = Endpoint(__name__)


@api
def create_topup(body: CreateTopup) -> Response:
    created = api.money("topup", body.model_dump(mode="json"))
    if created.status_code != 201:
        return created  # a refusal, stored and replayed as it is
    payment = open_checkout(Payment.from_json(jsonutil.loads(str(created.body))))
    replayed = {k: v for k, v in created.headers.items() if isinstance(v, str)}
    return json_response(payment.to_json(), status=201, headers=replayed or None)


handler = api.handler
