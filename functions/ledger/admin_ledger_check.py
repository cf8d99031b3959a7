"""GET /v1/admin/ledger/check: re-check every ledger invariant now."""

from ledgerline import audit, ledger
from ledgerline.db.tx import Cursor
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def check_ledger() -> Response:
    def work(cur: Cursor) -> list[ledger.Finding]:
        findings = ledger.check_invariants(cur)
        audit.record(
            cur, api.request.actor, "admin.ledger.checked", "ledger", None, metadata={"findings": len(findings)}
        )
        return findings

    findings = api.write(work)
    return json_response({"ok": not findings, "findings": [f.to_json() for f in findings]})


handler = api.handler
