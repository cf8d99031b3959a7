"""Fee schedules over HTTP: administrators set (PUT), list and remove them, each change
audited once with before and after in the same transaction; auditors only read; bad input
is a 422 naming the field that changes nothing; anyone else is refused (403)."""

from __future__ import annotations

import itertools
import threading
import uuid

import psycopg2.extras
import pytest

KIND = "escrow_release"


def schedule_rows(conn, currency: str) -> list[dict]:
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute("SELECT * FROM fee_schedules WHERE currency = %s ORDER BY transaction_kind", (currency,))
        return [dict(r) for r in cur.fetchall()]


def audit_rows(conn, currency: str) -> list[dict]:
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(
            "SELECT action, category, actor_id, actor_type, resource_type, payload_before, payload_after"
            "  FROM audit_log WHERE resource_type = 'fee_schedule' AND resource_id = %s ORDER BY occurred_at, id",
            (f"{currency}/{KIND}",),
        )
        return [dict(r) for r in cur.fetchall()]


def body(currency: str, over: dict | None = None, **more) -> dict:
    return {"currency": currency, "transaction_kind": KIND, "percent": "2.5", "fixed": "100.00", "minimum": "50.00",
            "maximum": "5000.00", **(over or {}), **more}  # fmt: skip


def test_an_admin_sets_changes_and_lists_a_schedule_audited_with_before_and_after(admin, auditor, owner_conn):
    me = admin.get("/v1/me").json()["id"]
    first = admin.request("PUT", "/v1/admin/fees", json=body("NGN"))
    assert first.status_code == 200, first.text
    created = first.json()
    assert created["currency"] == "NGN" and created["transaction_kind"] == KIND
    assert created["percent"] == "2.5000"
    assert created["fixed"] == {"amount": "100.00", "currency": "NGN"}
    assert created["minimum"] == {"amount": "50.00", "currency": "NGN"}
    assert created["maximum"] == {"amount": "5000.00", "currency": "NGN"}
    assert created["updated_by"] == me

    second = admin.request("PUT", "/v1/admin/fees", json=body("NGN", percent="1.25", maximum=None))
    assert second.status_code == 200, second.text
    changed = second.json()
    assert changed["percent"] == "1.2500" and changed["maximum"] is None

    rows = audit_rows(owner_conn, "NGN")
    assert [r["action"] for r in rows] == ["config.fee_schedule.updated"] * 2
    assert {r["category"] for r in rows} == {"admin"} and {str(r["actor_id"]) for r in rows} == {me}
    assert rows[0]["payload_before"] is None and rows[0]["payload_after"] == created
    assert rows[1]["payload_before"] == created and rows[1]["payload_after"] == changed

    stored = schedule_rows(owner_conn, "NGN")
    assert len(stored) == 1 and str(stored[0]["percent"]) == "1.2500" and stored[0]["maximum"] is None
    for reader in (admin, auditor):
        listed = reader.get("/v1/admin/fees")
        assert listed.status_code == 200, listed.text
        assert changed in listed.json()["items"] and listed.json()["next_cursor"] is None


@pytest.mark.parametrize(
    "over, field",
    [
        ({"currency": "XYZ"}, "currency"),
        ({"transaction_kind": "transfer"}, "transaction_kind"),
        ({"percent": "100.5"}, "percent"),
        ({"percent": "2.12345"}, "percent"),
        ({"percent": "-1"}, "percent"),
        ({"percent": "1e2"}, "percent"),
        ({"percent": 2.5}, "percent"),
        ({"fixed": "1.005"}, "fixed"),
        ({"fixed": 100}, "fixed"),
        ({"minimum": "-1.00"}, "minimum"),
        ({"minimum": "600.00", "maximum": "500.00"}, "maximum"),
        ({"currency": "JPY", "fixed": "1.5", "minimum": "0", "maximum": None}, "fixed"),
        ({"surprise": "1"}, "surprise"),
    ],
)
def test_a_bad_schedule_is_a_422_naming_the_field_and_changes_nothing(admin, owner_conn, over, field):
    currency = over.get("currency", "KES")
    admin.request("PUT", "/v1/admin/fees", json=body("KES", percent="3"))  # the schedule a refusal must not touch
    stored, audited = schedule_rows(owner_conn, currency), audit_rows(owner_conn, currency)
    r = admin.request("PUT", "/v1/admin/fees", json=body("KES", over))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["code"] == "validation_error"
    assert field in {e["field"] for e in problem["errors"]}
    assert schedule_rows(owner_conn, currency) == stored
    assert audit_rows(owner_conn, currency) == audited


def test_removing_a_schedule_is_audited_and_a_second_removal_is_404(admin, owner_conn):
    admin.request("PUT", "/v1/admin/fees", json=body("GHS"))
    kept = admin.get("/v1/admin/fees").json()["items"]
    before = next(s for s in kept if s["currency"] == "GHS")
    r = admin.delete(f"/v1/admin/fees/GHS/{KIND}")
    assert r.status_code == 204, r.text
    assert schedule_rows(owner_conn, "GHS") == []
    last = audit_rows(owner_conn, "GHS")[-1]
    assert last["action"] == "config.fee_schedule.deleted"
    assert last["payload_before"] == before and last["payload_after"] is None
    count = len(audit_rows(owner_conn, "GHS"))
    again = admin.delete(f"/v1/admin/fees/GHS/{KIND}")
    assert again.status_code == 404 and again.json()["code"] == "not_found"
    assert admin.delete("/v1/admin/fees/XYZ/anything").status_code == 404
    assert len(audit_rows(owner_conn, "GHS")) == count


@pytest.mark.parametrize("role", ["user", "merchant"])
def test_only_admins_and_auditors_reach_the_fee_routes(person, admin, owner_conn, role):
    admin.request("PUT", "/v1/admin/fees", json=body("ZAR"))
    stored, audited = schedule_rows(owner_conn, "ZAR"), audit_rows(owner_conn, "ZAR")
    client = person(role)
    for r in (
        client.get("/v1/admin/fees"),
        client.request("PUT", "/v1/admin/fees", json=body("ZAR", percent="50")),
        client.delete(f"/v1/admin/fees/ZAR/{KIND}"),
    ):
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "forbidden"
    assert schedule_rows(owner_conn, "ZAR") == stored
    assert audit_rows(owner_conn, "ZAR") == audited


def test_an_auditor_reads_but_cannot_change_schedules(auditor, admin, owner_conn):
    admin.request("PUT", "/v1/admin/fees", json=body("EGP"))
    stored = schedule_rows(owner_conn, "EGP")
    assert auditor.request("PUT", "/v1/admin/fees", json=body("EGP", percent="9")).status_code == 403
    assert auditor.delete(f"/v1/admin/fees/EGP/{KIND}").status_code == 403
    assert schedule_rows(owner_conn, "EGP") == stored


def test_concurrent_changes_are_each_audited_with_what_they_really_replaced(admin, owner_conn):
    """Ten administrators' PUTs race on one schedule that does not exist yet: exactly one
    creates it (before null), and each audit row's before is the previous row's after."""
    percents = [f"{n}.5" for n in range(10)]
    answers: list[int] = []
    barrier = threading.Barrier(len(percents))

    def put(percent: str) -> None:
        barrier.wait()
        answers.append(admin.request("PUT", "/v1/admin/fees", json=body("CAD", percent=percent)).status_code)

    threads = [threading.Thread(target=put, args=(p,)) for p in percents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [200] * len(percents)
    rows = audit_rows(owner_conn, "CAD")
    assert len(rows) == len(percents)
    assert rows[0]["payload_before"] is None
    for previous, row in itertools.pairwise(rows):
        assert row["payload_before"] == previous["payload_after"]
    final = schedule_rows(owner_conn, "CAD")
    assert len(final) == 1 and rows[-1]["payload_after"]["percent"] == str(final[0]["percent"])


def test_a_crash_before_the_audit_row_leaves_the_schedule_as_it_was(admin, owner_conn):
    admin.request("PUT", "/v1/admin/fees", json=body("EUR", percent="1"))
    stored, audited = schedule_rows(owner_conn, "EUR"), audit_rows(owner_conn, "EUR")
    name = f"test_fault_{uuid.uuid4().hex[:8]}"
    with owner_conn.cursor() as cur:
        cur.execute(
            f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  IF NEW.action = 'config.fee_schedule.updated' AND NEW.resource_id = 'EUR/{KIND}' THEN
                    RAISE EXCEPTION 'simulated crash mid-write: secret internals';
                  END IF;
                  RETURN NEW;
                END $$"""
        )
        cur.execute(f"CREATE TRIGGER {name} BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION {name}()")
    try:
        r = admin.request("PUT", "/v1/admin/fees", json=body("EUR", percent="7"))
    finally:
        with owner_conn.cursor() as cur:
            cur.execute(f"DROP TRIGGER {name} ON audit_log")
            cur.execute(f"DROP FUNCTION {name}()")
    assert r.status_code == 500 and r.json()["code"] == "internal_error"
    assert "secret internals" not in r.text
    assert schedule_rows(owner_conn, "EUR") == stored
    assert audit_rows(owner_conn, "EUR") == audited


def test_the_schedule_an_admin_sets_is_the_fee_the_next_release_charges(admin, wallet):
    """PUT a schedule, then release an escrow through the routes: the fee is fee_quote's of
    that schedule (2.5% of 123.45 + 1.00 = 4.08625, half-up 4.09), and fee + the seller's
    amount is the escrowed amount exactly; after DELETE, no fee."""
    put = admin.request("PUT", "/v1/admin/fees", json=body("USD", percent="2.5", fixed="1.00", minimum="0",
                                                           maximum=None))  # fmt: skip
    assert put.status_code == 200, put.text
    seller, _ = wallet("USD")
    seller_id = seller.get("/v1/me").json()["id"]

    def release(amount: str) -> dict:
        buyer, account = wallet("USD", "500.00")
        made = buyer.post("/v1/escrows", idempotency_key=True,
                          json={"seller_id": seller_id, "amount": amount, "currency": "USD", "description": "fees"})  # fmt: skip
        assert made.status_code == 201, made.text
        escrow = made.json()["id"]
        funded = buyer.post(f"/v1/escrows/{escrow}/fund", idempotency_key=True, json={"account_id": account})
        assert funded.status_code == 200, funded.text
        released = buyer.post(f"/v1/escrows/{escrow}/release", idempotency_key=True)
        assert released.status_code == 200, released.text
        return released.json()

    charged = release("123.45")
    assert charged["fee"] == {"amount": "4.09", "currency": "USD"}
    assert charged["seller_amount"] == {"amount": "119.36", "currency": "USD"}
    assert admin.delete(f"/v1/admin/fees/USD/{KIND}").status_code == 204
    free = release("123.45")
    assert free["fee"] == {"amount": "0.00", "currency": "USD"}
    assert free["seller_amount"] == {"amount": "123.45", "currency": "USD"}
