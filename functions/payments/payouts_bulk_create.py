"""POST /v1/payouts/bulk: pay a merchant's wallet out to many of its payout accounts at
once (each item a withdrawal with its hold; approved by administrators above a total)."""

from ledgerline import idempotency
from ledgerline.http import Endpoint, Response
from ledgerline.payments import bulk_payouts
from ledgerline.payments.bulk_payouts import CreateBulkPayout

api = Endpoint(__name__)


@api
def create_bulk_payout(body: CreateBulkPayout) -> Response:
    request = api.request
    key = idempotency.parse_key(request.headers.get(idempotency.HEADER))
    args = bulk_payouts.request_arguments(body, caller=request.require_principal(), key=key, actor=request.actor)
    return api.money("bulk_payout_request", args)


handler = api.handler
