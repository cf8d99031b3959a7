"""What administrators do with reconciliation: ask for a run (queued, never done inside
the request), list runs and findings, and change a finding's status (audited)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from ledgerline import audit, errors
from ledgerline.db import Cursor
from ledgerline.gateways.base import PROVIDERS
from ledgerline.ids import object_id
from ledgerline.reconciliation import store


def _invalid(field: str, message: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(message, errors=[errors.FieldError(field, message)])


def parse_day(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise _invalid("date", f"{text!r} is not a date like 2026-11-30") from None
    if day >= datetime.now(UTC).date():
        raise _invalid("date", "only a day that is over (UTC) can be reconciled")
    return day


def request_run(cur: Cursor, provider: str, day_text: str, actor: audit.Actor) -> dict[str, Any]:
    """Queue a run of ``provider``'s day; the reconcile job executes queued runs."""
    if provider not in PROVIDERS:
        raise _invalid("provider", f"provider must be one of {', '.join(PROVIDERS)}")
    day = parse_day(day_text)
    run = store.create_run(cur, provider, day, str(actor.id) if actor.id else None)
    body = run_json(run)
    audit.record(cur, actor, "reconciliation.run_requested", "reconciliation_run", run["id"], after=body)
    return body


def runs(cur: Cursor, limit: int) -> list[dict[str, Any]]:
    return [run_json(r) for r in store.list_runs(cur, limit)]


def run_discrepancies(cur: Cursor, run_id: str) -> list[dict[str, Any]]:
    found = store.get_run(cur, str(object_id(run_id, "reconciliation run")))
    if found is None:
        raise errors.NotFound(f"reconciliation run {run_id} not found")
    return [discrepancy_json(d) for d in store.run_discrepancies(cur, found["id"])]


def set_status(
    cur: Cursor,
    discrepancy_id: str,
    *,
    status: str,
    transaction_id: str | None,
    note: str | None,
    actor: audit.Actor,
) -> dict[str, Any]:
    """open -> explained | resolved; explained -> resolved | open. A resolved finding
    names the correcting transaction and stays resolved."""
    key = str(object_id(discrepancy_id, "discrepancy"))
    if status == "resolved" and not transaction_id:
        raise _invalid("transaction_id", "a resolved discrepancy names its correcting transaction")
    if status != "resolved" and transaction_id:
        raise _invalid("transaction_id", "only a resolved discrepancy names a transaction")
    if transaction_id:
        tx = str(object_id_or_invalid(transaction_id))
        cur.execute("SELECT 1 FROM transactions WHERE id = %s", (tx,))
        if cur.fetchone() is None:
            raise _invalid("transaction_id", f"transaction {transaction_id} does not exist")
    before = store.lock_discrepancy(cur, key)
    if before is None:
        raise errors.NotFound(f"discrepancy {discrepancy_id} not found")
    if before["status"] == "resolved":
        raise errors.InvalidStateTransition("a resolved discrepancy stays resolved")
    after = store.update_discrepancy(cur, key, status, transaction_id, note)
    audit.record(
        cur,
        actor,
        "reconciliation.discrepancy_updated",
        "reconciliation_discrepancy",
        key,
        before=discrepancy_json(before),
        after=discrepancy_json(after),
    )
    return discrepancy_json(after)


def object_id_or_invalid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise _invalid("transaction_id", f"{text!r} is not a transaction id") from None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _time(value: Any) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value is not None else None


def run_json(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": r["id"],
        "provider": r["provider"],
        "date": r["day"].isoformat(),
        "status": r["status"],
        "gateway_count": r["gateway_count"],
        "ledger_count": r["ledger_count"],
        "discrepancy_count": r["discrepancy_count"],
        "totals": r["totals"],
        "duration_ms": r["duration_ms"],
        "error": r["error"],
        "requested_by": r["requested_by"],
        "created_at": _time(r["created_at"]),
        "started_at": _time(r["started_at"]),
        "finished_at": _time(r["finished_at"]),
    }


def discrepancy_json(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": d["id"],
        "run_id": d["run_id"],
        "last_run_id": d["last_run_id"],
        "provider": d["provider"],
        "date": d["day"].isoformat(),
        "kind": d["kind"],
        "reference": d["reference"],
        "payment_id": d["payment_id"],
        "gateway": {
            "amount": _text(d["gateway_amount"]),
            "currency": d["gateway_currency"],
            "status": d["gateway_status"],
            "fee": _text(d["gateway_fee"]),
            "expected_fee": _text(d["expected_fee"]),
            "count": d["gateway_count"],
        },
        "ledger": {"amount": _text(d["ledger_amount"]), "currency": d["ledger_currency"], "status": d["ledger_status"]},
        "status": d["status"],
        "resolution_transaction_id": d["resolution_transaction_id"],
        "note": d["note"],
        "created_at": _time(d["created_at"]),
        "updated_at": _time(d["updated_at"]),
    }
