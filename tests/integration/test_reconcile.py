"""Reconciliation: a seeded gateway report (the fake gateway's list routes, through each
provider's adapter) against the ledger's payments of the day. Every planted discrepancy
is found and nothing else; a clean day finds none; a re-run and concurrent runs of one
day leave one set of findings; a run that fails midway leaves no staging rows or findings."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
import requests

from ledgerline.db import transaction
from ledgerline.gateways import registry
from ledgerline.gateways.base import GatewayUnavailable
from ledgerline.ledger.testing import new_wallet
from ledgerline.local.fake_wire.report import KINDS, SeededReport
from ledgerline.reconciliation import run, store
from ledgerline.reconciliation.testing import insert_ledger_payments


@pytest.fixture
def ledger_anchor(owner_conn, aws_endpoint):
    """A real wallet and one real posting that the bulk payments point at."""
    wallet = new_wallet(funded=Decimal("10.00"))
    with owner_conn.cursor() as cur:
        cur.execute("SELECT transaction_id FROM entries WHERE account_id = %s LIMIT 1", (wallet.id,))
        tx = cur.fetchone()[0]
    return {"owner_id": str(wallet.owner_id), "account_id": str(wallet.id), "transaction_id": str(tx)}


def a_day() -> date:
    """A day of its own per test (findings are per provider and day)."""
    return date(2015, 1, 1) + timedelta(days=random.randrange(3000))


def seed(fake_gateway, owner_conn, anchor, provider, n, per_kind, day=None) -> SeededReport:
    day = day or a_day()
    report = SeededReport(provider, day, n, per_kind, seed=random.randrange(1, 90))
    r = requests.post(
        f"{fake_gateway.url}/_fake/{provider}/reports",
        json={"date": day.isoformat(), "n": n, "per_kind": per_kind, "seed": report.seed},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    with owner_conn.cursor() as cur:
        insert_ledger_payments(cur, report, **anchor)
    return report


def found(run_id: str) -> dict[str, set[str]]:
    rows = transaction(lambda cur: store.run_discrepancies(cur, run_id), read_only=True)
    out: dict[str, set[str]] = {k: set() for k in KINDS}
    for row in rows:
        out[row["kind"]].add(row["reference"])
    return out


@pytest.mark.parametrize("provider", ["paystack", "stripe", "flutterwave"])
def test_every_planted_discrepancy_is_found_and_nothing_else(fake_gateway, owner_conn, ledger_anchor, provider):
    report = seed(fake_gateway, owner_conn, ledger_anchor, provider, n=140, per_kind=2)
    summary = run.reconcile(provider, report.day, registry.gateway(provider))

    assert found(summary.run_id) == report.references()
    assert summary.discrepancy_count == 7 * 2
    assert summary.gateway_count == 140
    assert summary.ledger_count == 140 - 2  # the MISSING_IN_LEDGER rows are not in the ledger
    saved = transaction(lambda cur: store.get_run(cur, summary.run_id), read_only=True)
    assert saved["status"] == "succeeded" and saved["discrepancy_count"] == 14
    assert set(saved["totals"]) >= {"NGN" if provider != "stripe" else "USD"}
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM reconciliation_staging WHERE run_id = %s", (summary.run_id,))
        assert cur.fetchone()[0] == 0


def test_a_found_discrepancy_says_what_each_side_has(fake_gateway, owner_conn, ledger_anchor):
    report = seed(fake_gateway, owner_conn, ledger_anchor, "paystack", n=70, per_kind=1)
    summary = run.reconcile("paystack", report.day, registry.gateway("paystack"))
    rows = {r["kind"]: r for r in transaction(lambda cur: store.run_discrepancies(cur, summary.run_id))}
    i = report.planted()["AMOUNT_MISMATCH"][0]
    amount = rows["AMOUNT_MISMATCH"]
    assert amount["gateway_amount"] == report.amount(i) + 1
    assert amount["ledger_amount"] == report.amount(i)
    assert amount["status"] == "open" and amount["payment_id"] is not None
    assert rows["STATUS_MISMATCH"]["gateway_status"] == "failed"
    assert rows["STATUS_MISMATCH"]["ledger_status"] == "succeeded"
    assert rows["DUPLICATE_IN_GATEWAY"]["gateway_count"] == 2
    assert rows["CURRENCY_MISMATCH"]["gateway_currency"] != rows["CURRENCY_MISMATCH"]["ledger_currency"]
    assert rows["FEE_MISMATCH"]["gateway_fee"] != rows["FEE_MISMATCH"]["expected_fee"]
    assert rows["MISSING_IN_LEDGER"]["payment_id"] is None


def test_a_clean_day_finds_nothing_and_notifies_no_one(fake_gateway, owner_conn, ledger_anchor):
    report = seed(fake_gateway, owner_conn, ledger_anchor, "paystack", n=120, per_kind=0)
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM outbox WHERE payload->>'type' = 'reconciliation.discrepancies'")
        before = cur.fetchone()[0]
    summary = run.reconcile("paystack", report.day, registry.gateway("paystack"))
    assert summary.discrepancy_count == 0
    assert found(summary.run_id) == {k: set() for k in KINDS}
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM outbox WHERE payload->>'type' = 'reconciliation.discrepancies'")
        assert cur.fetchone()[0] == before


def test_a_run_with_discrepancies_emails_finance_once(fake_gateway, owner_conn, ledger_anchor):
    report = seed(fake_gateway, owner_conn, ledger_anchor, "flutterwave", n=70, per_kind=1)
    summary = run.reconcile("flutterwave", report.day, registry.gateway("flutterwave"))
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT payload FROM outbox WHERE payload->>'type' = 'reconciliation.discrepancies'"
            " AND payload->>'run_id' = %s",
            (summary.run_id,),
        )
        mails = [r[0] for r in cur.fetchall()]
    assert len(mails) == 1
    assert mails[0]["email"] and "7 discrepancies" in mails[0]["subject"]


def test_a_rerun_finds_the_same_set_without_duplicates(fake_gateway, owner_conn, ledger_anchor):
    report = seed(fake_gateway, owner_conn, ledger_anchor, "paystack", n=70, per_kind=1)
    first = run.reconcile("paystack", report.day, registry.gateway("paystack"))
    second = run.reconcile("paystack", report.day, registry.gateway("paystack"))
    assert found(second.run_id) == report.references()  # the findings moved to the newer run
    day_rows = transaction(lambda cur: store.day_discrepancies(cur, "paystack", report.day))
    assert len(day_rows) == 7
    assert {r["run_id"] for r in day_rows} == {first.run_id}
    assert {r["last_run_id"] for r in day_rows} == {second.run_id}


def test_concurrent_runs_of_one_day_produce_one_set(fake_gateway, owner_conn, ledger_anchor):
    report = seed(fake_gateway, owner_conn, ledger_anchor, "stripe", n=140, per_kind=1)
    barrier = threading.Barrier(3)
    results, errors = [], []

    def one() -> None:
        try:
            barrier.wait()
            results.append(run.reconcile("stripe", report.day, registry.gateway("stripe")))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert len(results) == 3
    day_rows = transaction(lambda cur: store.day_discrepancies(cur, "stripe", report.day))
    assert {(r["kind"], r["reference"]) for r in day_rows} == {
        (kind, ref) for kind, refs in report.references().items() for ref in refs
    }
    assert all(r.discrepancy_count == 7 for r in results)


def test_a_run_failing_midway_leaves_no_trace(fake_gateway, owner_conn, ledger_anchor):
    """The gateway fails on page 3 of the report: the run is marked failed, and no staging
    row, finding or finance e-mail of it remains."""
    report = seed(fake_gateway, owner_conn, ledger_anchor, "paystack", n=200, per_kind=2)
    gateway = registry.gateway("paystack")
    pages = []

    def failing(day, cursor):
        pages.append(cursor)
        if len(pages) == 3:
            raise GatewayUnavailable("the report went away")
        return gateway.list_payments(day, cursor)

    created = transaction(lambda cur: store.create_run(cur, "paystack", report.day))
    with pytest.raises(GatewayUnavailable):
        run.execute(created["id"], failing)
    saved = transaction(lambda cur: store.get_run(cur, created["id"]), read_only=True)
    assert saved["status"] == "failed" and "went away" in saved["error"]
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM reconciliation_staging WHERE run_id = %s", (created["id"],))
        assert cur.fetchone()[0] == 0
        cur.execute(
            "SELECT count(*) FROM reconciliation_discrepancies WHERE provider = 'paystack' AND day = %s", (report.day,)
        )
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM outbox WHERE payload->>'run_id' = %s", (created["id"],))
        assert cur.fetchone()[0] == 0


def test_a_payment_just_past_midnight_matches_within_the_grace_window(fake_gateway, owner_conn, ledger_anchor):
    """The gateway reports a payment on day D that the ledger opened at 23:50 of D-1: with
    the grace window it matches (no MISSING_IN_LEDGER); with none it does not."""
    report = seed(fake_gateway, owner_conn, ledger_anchor, "paystack", n=70, per_kind=0)
    with owner_conn.cursor() as cur:
        cur.execute(
            "UPDATE payments SET created_at = %s::date - interval '10 minutes' WHERE reference = %s",
            (report.day, report.reference(0)),
        )
    strict = run.reconcile("paystack", report.day, registry.gateway("paystack"), grace=timedelta(0))
    assert found(strict.run_id)["MISSING_IN_LEDGER"] == {report.reference(0)}
    graceful = run.reconcile("paystack", report.day, registry.gateway("paystack"), grace=timedelta(minutes=30))
    assert graceful.discrepancy_count == 0


def test_the_daily_job_reconciles_yesterday_for_every_provider_and_runs_queued_ones(
    fake_gateway, owner_conn, ledger_anchor
):
    from datetime import UTC, datetime

    from functions.reconcile import gateway_reports

    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    report = seed(fake_gateway, owner_conn, ledger_anchor, "paystack", n=70, per_kind=1, day=yesterday)
    queued_day = a_day()
    queued = transaction(lambda cur: store.create_run(cur, "flutterwave", queued_day))

    result = gateway_reports.handler({"id": "test"}, None)

    assert result["ok"], result
    by_day = {(r["provider"], r["day"]): r for r in result["runs"]}
    assert by_day[("paystack", yesterday.isoformat())]["discrepancy_count"] == 7
    assert {("stripe", yesterday.isoformat()), ("flutterwave", yesterday.isoformat())} <= set(by_day)
    assert ("flutterwave", queued_day.isoformat()) in by_day
    ran = transaction(lambda cur: store.get_run(cur, queued["id"]), read_only=True)
    assert ran["status"] == "succeeded"
    paystack_run = by_day[("paystack", yesterday.isoformat())]["run_id"]
    assert found(paystack_run) == report.references()
    assert transaction(store.queued_runs, read_only=True) == []


def test_a_reference_with_tabs_newlines_and_backslashes_is_staged_as_sent(owner_conn):
    """The gateway's text goes into COPY escaped: a hostile reference lands intact in its
    own column and cannot shift the others."""
    from datetime import UTC, datetime

    from ledgerline.gateways.base import GatewayPayment, PaymentStatus
    from ledgerline.reconciliation.staging import LineReader, copy_lines

    odd = "a\tb\\nc\nd\re\\"
    payment = GatewayPayment(
        reference=odd,
        provider_id="id\t\\N",
        amount=Decimal("12.50"),
        currency="NGN",
        status=PaymentStatus.SUCCEEDED,
        fee=Decimal("0.19"),
        paid_at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    run_id = str(uuid.uuid4())
    with owner_conn.cursor() as cur:
        cur.execute("BEGIN")
        try:
            cur.copy_expert(
                "COPY reconciliation_staging (run_id, reference, provider_id, amount, currency, status, fee,"
                " expected_fee, paid_at) FROM STDIN",
                LineReader(copy_lines(run_id, "paystack", [payment])),
            )
            cur.execute(
                "SELECT reference, provider_id, amount, fee, expected_fee, paid_at FROM reconciliation_staging"
                " WHERE run_id = %s",
                (run_id,),
            )
            assert cur.fetchall() == [
                (odd, "id\t\\N", Decimal("12.5000"), Decimal("0.1900"), Decimal("0.1900"), payment.paid_at)
            ]
        finally:
            cur.execute("ROLLBACK")


def test_the_cli_runs_a_day_now_and_exits_1_on_discrepancies(fake_gateway, owner_conn, ledger_anchor, capsys):
    import json

    from ledgerline import cli

    report = seed(fake_gateway, owner_conn, ledger_anchor, "stripe", n=70, per_kind=1)
    assert cli.main(["reconcile", "--provider", "stripe", "--date", report.day.isoformat()]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["discrepancy_count"] == 7 and printed["gateway_count"] == 70
    assert found(printed["run_id"]) == report.references()

    clean = seed(fake_gateway, owner_conn, ledger_anchor, "stripe", n=30, per_kind=0)
    assert cli.main(["reconcile", "--provider", "stripe", "--date", clean.day.isoformat()]) == 0
    assert cli.main(["reconcile", "--provider", "stripe", "--date", "2999-01-01"]) != 0
