"""POST /v1/withdrawals: withdraw to a bank account; the amount is held until an
administrator approves or rejects it (above the step-up amount, with a second factor)."""

from ledgerline import idempotency
from ledgerline.http import Endpoint, Response
from ledgerline.payments import withdrawals
from ledgerline.payments.withdrawals import CreateWithdrawal

api = Endpoint(__name__)


@api
def create_withdrawal(body: CreateWithdrawal) -> Response:
    request = api.request
    key = idempotency.parse_key(request.headers.get(idempotency.HEADER))
    args = withdrawals.request_arguments(body, caller=request.require_principal(), key=key, actor=request.actor)
    return api.money("withdrawal_request", args)


handler = api.handler
