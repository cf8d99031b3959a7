"""POST /v1/escrows/{id}/dispute/evidence/{evidence_id}/confirm: the party who declared a
document says it is uploaded; the stored object is read back and becomes evidence only if
its size, type and SHA-256 are the declared ones (audited)."""

from ledgerline import evidence
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def confirm_evidence(id: str, evidence_id: str) -> Response:
    request = api.request
    caller = request.require_principal()
    key = api.read(lambda cur: evidence.pending_upload(cur, id, evidence_id, caller))
    stored = evidence.read_upload(key)  # outside the transaction: it reads up to 10 MiB
    confirmed = api.write(lambda cur: evidence.confirm(cur, id, evidence_id, stored, caller, request.actor))
    return json_response(confirmed)


handler = api.handler
