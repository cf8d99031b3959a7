"""GET /v1/accounts/{id}: one of the caller's accounts, with its balance."""

from ledgerline import ledger
from ledgerline.http import Endpoint, Response, json_response
from ledgerline.ledger.access import read_scope

api = Endpoint(__name__)


@api
def get_account(id: str) -> Response:
    scope = read_scope(api.request.require_principal())
    account = api.read(lambda cur: ledger.get_account(cur, id, owner_id=scope))
    return json_response(account.to_json())


handler = api.handler
