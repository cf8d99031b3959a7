"""GET /v1/escrows/{id}: one escrow, to its buyer, its seller, administrators and auditors;
with what the caller may move it to now."""

from ledgerline.escrow import get_escrow
from ledgerline.http import Endpoint, Response, json_response
from ledgerline.ledger.access import READ_ANY_ROLES

api = Endpoint(__name__)


@api
def get_one_escrow(id: str) -> Response:
    caller = api.request.require_principal()
    escrow = api.read(
        lambda cur: get_escrow(
            cur, id, viewer_id=caller.id, sees_all=caller.role in READ_ANY_ROLES, admin=caller.role == "admin"
        )
    )
    return json_response(escrow.to_json())


handler = api.handler
