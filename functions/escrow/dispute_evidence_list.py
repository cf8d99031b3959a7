"""GET /v1/escrows/{id}/dispute/evidence: a disputed escrow's evidence, oldest first (its
buyer and seller, administrators and auditors)."""

from ledgerline import evidence
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def list_evidence(id: str) -> Response:
    caller = api.request.require_principal()
    items = api.read(lambda cur: evidence.list_evidence(cur, id, caller))
    return json_response({"items": items, "next_cursor": None})


handler = api.handler
