"""POST /v1/escrows/{id}/dispute/evidence: the buyer or seller of a disputed escrow adds
evidence; a document gets a presigned upload form for the private evidence bucket."""

from ledgerline import evidence
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def submit_evidence(id: str, body: evidence.EvidenceBody) -> Response:
    request = api.request
    caller = request.require_principal()
    submission = evidence.check_submission(id, body, caller)
    upload = evidence.presign(submission)  # before the write: no evidence row without its form
    recorded = api.write(lambda cur: evidence.record(cur, submission, caller, request.actor))
    answer = {**recorded, "upload": None if upload is None else upload.to_json()}
    return json_response(answer, status=201, headers={"Cache-Control": "no-store"})


handler = api.handler
