"""GET /v1/admin/ledger/check: run the ledger check now (incremental, then slices of the
full check within a short budget); same shape as before: {ok, findings}."""

from ledgerline import audit
from ledgerline.db.tx import Cursor
from ledgerline.http import Endpoint, Response, json_response
from ledgerline.ledger.invariants import run_ledger_check

api = Endpoint(__name__)

# A request answers quickly: the hourly job carries the full check on with a longer budget.
BUDGET_SECONDS = 5.0


@api
def check_ledger() -> Response:
    run = run_ledger_check(BUDGET_SECONDS, actor=api.request.actor)

    def record(cur: Cursor) -> None:
        audit.record(
            cur,
            api.request.actor,
            "admin.ledger.checked",
            "ledger",
            None,
            metadata={
                "findings": len(run.findings),
                "new_findings": len(run.new),
                "checked_below": run.checked_below,
                "full_passes_completed": run.full_passes_completed,
            },
        )

    api.write(record)
    return json_response(run.to_json())


handler = api.handler
