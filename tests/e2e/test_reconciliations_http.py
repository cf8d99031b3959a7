"""The reconciliation admin routes over HTTP: an admin queues a run (201 at once, the work
is the job's), lists runs and a run's discrepancies, and explains or resolves one (audited
with before and after); everyone else gets 403; bad input is a 422 that changes nothing."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
import requests

from ledgerline.db import transaction
from ledgerline.gateways import registry
from ledgerline.ledger.testing import new_wallet
from ledgerline.local.fake_wire.report import SeededReport
from ledgerline.reconciliation import run, store
from ledgerline.reconciliation.testing import insert_ledger_payments


def a_day() -> date:
    return date(2012, 1, 1) + timedelta(days=random.randrange(2500))


@pytest.fixture(scope="module")
def reconciled(fake_gateway, aws_endpoint, gateway, database_url):
    """A paystack day with one discrepancy of each kind, reconciled: the run's summary."""
    from ledgerline.db.connection import connect

    wallet = new_wallet(funded=Decimal("10.00"))
    day = a_day()
    report = SeededReport("paystack", day, 70, 1, seed=random.randrange(1, 90))
    r = requests.post(
        f"{fake_gateway.url}/_fake/paystack/reports",
        json={"date": day.isoformat(), "n": 70, "per_kind": 1, "seed": report.seed},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    conn = connect(database_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT transaction_id FROM entries WHERE account_id = %s LIMIT 1", (wallet.id,))
            tx = str(cur.fetchone()[0])
            insert_ledger_payments(
                cur, report, owner_id=str(wallet.owner_id), account_id=str(wallet.id), transaction_id=tx
            )
    finally:
        conn.close()
    summary = run.reconcile("paystack", day, registry.gateway("paystack"))
    return {"summary": summary, "report": report, "transaction_id": tx}


def audit_rows(owner_conn, action, resource_id):
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT payload_before, payload_after FROM audit_log WHERE action = %s AND resource_id = %s",
            (action, str(resource_id)),
        )
        return cur.fetchall()


def test_an_admin_queues_a_run_and_gets_it_back_at_once(admin, owner_conn):
    day = a_day()
    r = admin.post("/v1/admin/reconciliations", json={"provider": "stripe", "date": day.isoformat()})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "queued" and body["provider"] == "stripe" and body["date"] == day.isoformat()
    assert body["discrepancy_count"] is None  # nothing was done inside the request
    assert len(audit_rows(owner_conn, "reconciliation.run_requested", body["id"])) == 1
    listed = admin.get("/v1/admin/reconciliations").json()["items"]
    assert body["id"] in {x["id"] for x in listed}
    queued = transaction(store.queued_runs, read_only=True)
    assert body["id"] in {q["id"] for q in queued}

    # The reconcile-queued job does the work, later.
    from functions.reconcile import queued_runs

    result = queued_runs.handler({"id": "test"}, None)
    assert body["id"] in {r["run_id"] for r in result["runs"]}
    ran = admin.get("/v1/admin/reconciliations").json()["items"]
    mine = next(x for x in ran if x["id"] == body["id"])
    assert mine["status"] == "succeeded" and mine["discrepancy_count"] == 0 and mine["finished_at"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"provider": "mpesa", "date": "2024-01-01"}, "provider"),
        ({"provider": "paystack", "date": "yesterday"}, "date"),
        ({"provider": "paystack", "date": "2999-01-01"}, "date"),
        ({"provider": "paystack"}, None),
        ({"provider": "paystack", "date": "2024-01-01", "extra": 1}, None),
    ],
)
def test_a_bad_run_request_is_a_422_and_queues_nothing(admin, owner_conn, body, field):
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM reconciliation_runs")
        before = cur.fetchone()[0]
    r = admin.post("/v1/admin/reconciliations", json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    if field:
        assert field in {e["field"] for e in r.json().get("errors", [])}
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM reconciliation_runs")
        assert cur.fetchone()[0] == before


def test_the_run_s_discrepancies_are_listed(admin, reconciled):
    run_id = reconciled["summary"].run_id
    items = admin.get(f"/v1/admin/reconciliations/{run_id}/discrepancies").json()["items"]
    assert {(i["kind"], i["reference"]) for i in items} == {
        (k, ref) for k, refs in reconciled["report"].references().items() for ref in refs
    }
    assert admin.get(f"/v1/admin/reconciliations/{uuid.uuid4()}/discrepancies").status_code == 404
    assert admin.get("/v1/admin/reconciliations/not-a-uuid/discrepancies").status_code == 404


@pytest.mark.parametrize("role", ["user", "merchant", "auditor"])
def test_only_admins_reach_the_reconciliation_routes(person, reconciled, role):
    client = person(role)
    run_id = reconciled["summary"].run_id
    assert client.get("/v1/admin/reconciliations").status_code == 403
    assert client.get(f"/v1/admin/reconciliations/{run_id}/discrepancies").status_code == 403
    assert (
        client.post("/v1/admin/reconciliations", json={"provider": "paystack", "date": "2024-01-01"}).status_code == 403
    )
    some = transaction(lambda cur: store.run_discrepancies(cur, run_id))[0]
    r = client.patch(f"/v1/admin/reconciliation-discrepancies/{some['id']}", json={"status": "explained"})
    assert r.status_code == 403
    assert transaction(lambda cur: store.lock_discrepancy(cur, some["id"]))["status"] == "open"


def test_an_admin_explains_then_resolves_a_discrepancy_audited(admin, owner_conn, reconciled):
    run_id = reconciled["summary"].run_id
    items = admin.get(f"/v1/admin/reconciliations/{run_id}/discrepancies").json()["items"]
    target = next(i for i in items if i["kind"] == "AMOUNT_MISMATCH")
    url = f"/v1/admin/reconciliation-discrepancies/{target['id']}"

    r = admin.patch(url, json={"status": "explained", "note": "customer paid twice by card"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "explained"

    # A resolution names a real transaction; a missing or absent one is a 422 that changes nothing.
    assert admin.patch(url, json={"status": "resolved"}).status_code == 422
    assert admin.patch(url, json={"status": "resolved", "transaction_id": str(uuid.uuid4())}).status_code == 422
    assert admin.patch(url, json={"status": "resolved", "transaction_id": "nope"}).status_code == 422
    assert admin.patch(url, json={"status": "closed"}).status_code == 422

    r = admin.patch(url, json={"status": "resolved", "transaction_id": reconciled["transaction_id"]})
    assert r.status_code == 200, r.text
    assert r.json()["resolution_transaction_id"] == reconciled["transaction_id"]
    assert admin.patch(url, json={"status": "open"}).status_code == 409

    rows = audit_rows(owner_conn, "reconciliation.discrepancy_updated", target["id"])
    assert [(b["status"], a["status"]) for b, a in rows] == [("open", "explained"), ("explained", "resolved")]
