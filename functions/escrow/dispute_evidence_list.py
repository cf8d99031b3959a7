"""GET /v1/escrows/{id}/dispute/evidence: a disputed escrow's evidence, oldest first (its
buyer and seller, administrators and auditors), each confirmed document with a short-lived
download link to the version that was confirmed."""

from ledgerline import evidence
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def list_evidence(id: str) -> Response:
    caller = api.request.require_principal()
    listed = api.read(lambda cur: evidence.list_evidence(cur, id, caller))
    items = evidence.with_downloads(listed)  # links to confirmed versions, signed after the read
    return json_response({"items": items, "next_cursor": None}, headers={"Cache-Control": "no-store"})


handler = api.handler
