"""DELETE /v1/payout-accounts/{id}: remove one of the caller's payout accounts (softly:
withdrawals already made to it are still paid to it)."""

from ledgerline.http import Endpoint, Response
from ledgerline.ids import object_id
from ledgerline.payments import payout_accounts

api = Endpoint(__name__)


@api
def remove_payout_account(id: str) -> Response:
    request = api.request
    account_id = object_id(id, "payout account")
    owner = request.require_principal().id
    api.write(lambda cur: payout_accounts.remove(cur, owner, account_id, request.actor))
    return Response(status_code=204)


handler = api.handler
