"""POST /v1/accounts: open a wallet for the caller in a currency."""

from ledgerline import ledger
from ledgerline.http import Endpoint, Response, json_response
from ledgerline.ledger.schemas import CreateAccount

api = Endpoint(__name__)


@api
def create_account(body: CreateAccount) -> Response:
    principal = api.request.require_principal()
    account = api.write(
        lambda cur: ledger.open_account(
            cur, owner_id=principal.id, currency=body.currency, name=body.name, actor=api.request.actor
        )
    )
    return json_response(account.to_json(), 201)


handler = api.handler
