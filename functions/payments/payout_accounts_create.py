"""POST /v1/payout-accounts: add a bank account to be paid out to, once the gateway's
account-name enquiry resolved it (the name is the bank's); answered masked."""

from ledgerline.http import Endpoint, Response, json_response
from ledgerline.payments import payout_accounts
from ledgerline.payments.payout_accounts import AddPayoutAccount

api = Endpoint(__name__)


@api
def add_payout_account(body: AddPayoutAccount) -> Response:
    request = api.request
    owner = request.require_principal().id
    resolved = payout_accounts.resolve(body)  # the gateway first: no transaction waits on it
    added = api.write(lambda cur: payout_accounts.add(cur, owner, resolved, request.actor))
    return json_response(added.to_json(), 201)


handler = api.handler
