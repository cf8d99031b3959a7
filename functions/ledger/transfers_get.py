"""GET /v1/transfers/{id}: a transfer the caller sent or received."""

from ledgerline import ledger
from ledgerline.http import Endpoint, Response, json_response
from ledgerline.ledger.access import read_scope

api = Endpoint(__name__)


@api
def get_transfer(id: str) -> Response:
    scope = read_scope(api.request.require_principal())
    transfer = api.read(lambda cur: ledger.get_transfer(cur, id, viewer_id=scope))
    return json_response(transfer.to_json())


handler = api.handler
