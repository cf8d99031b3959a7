"""Invoices over real HTTP (the local gateway, the embedded PostgreSQL): create, change
(the audit row carries only what changed), soft delete, read and list, each refusal a
problem+json that changes nothing; paying one into a new escrow (the buyer debited, the
escrow FUNDED with the amount, the invoice PAID) once, whatever races it, and nothing at
all when it is refused or crashes midway."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ledgerline.invoices import model

ITEMS = [
    {"description": "Bags of cement", "quantity": 2, "unit_price": "1500.00"},
    {"description": "Delivery", "quantity": "1", "unit_price": "250.50"},
]  # 3250.50


def today() -> date:
    return datetime.now(UTC).date()


def due(days: int = 14) -> str:
    return (today() + timedelta(days=days)).isoformat()


def me(client: Any) -> str:
    return str(client.get("/v1/me").json()["id"])


def bill(seller: Any, buyer_id: str, **changes: Any) -> Any:
    body = {"buyer_id": buyer_id, "currency": "NGN", "items": ITEMS, "due_date": due(), **changes}
    return seller.post("/v1/invoices", json=body)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert (problem["status"], problem["code"]) == (status, code)
    assert problem["detail"] and problem["title"] and problem["type"]
    return dict(problem)


def audit_rows(owner_conn: Any, invoice_id: str, action: str | None = None) -> list[dict[str, Any]]:
    """The audit rows about one invoice (and its escrow, which names it in its metadata)."""
    with owner_conn.cursor() as cur:
        cur.execute(
            """
            SELECT action, actor_type, actor_id, resource_type, resource_id, payload_before, payload_after, metadata
              FROM audit_log
             WHERE (resource_type = 'invoice' AND resource_id = %(id)s) OR metadata->>'invoice_id' = %(id)s
                OR metadata->'request'->>'invoice_id' = %(id)s
             ORDER BY occurred_at, id
            """,
            {"id": invoice_id},
        )
        columns = [c.name for c in cur.description]
        rows = [dict(zip(columns, r, strict=True)) for r in cur.fetchall()]
    return [r for r in rows if action is None or r["action"] == action]


def row(owner_conn: Any, sql: str, *params: Any) -> Any:
    with owner_conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def balance(owner_conn: Any, account_id: str) -> Decimal:
    return Decimal(row(owner_conn, "SELECT posted - held FROM balances WHERE account_id = %s", account_id)[0])


@pytest.fixture
def parties(person: Any) -> dict[str, Any]:
    seller, buyer, stranger = person("merchant"), person(), person()
    return {"seller": seller, "buyer": buyer, "stranger": stranger, "buyer_id": me(buyer), "seller_id": me(seller)}


@pytest.fixture
def invoice(parties: dict[str, Any]) -> dict[str, Any]:
    r = bill(parties["seller"], parties["buyer_id"])
    assert r.status_code == 201, r.text
    return dict(r.json())


# ------------------------------------------------------------------------------ create, read


def test_an_invoice_is_created_pending_with_its_amount_derived_and_its_parties_read_it(parties, owner_conn, admin):
    r = bill(parties["seller"], parties["buyer_id"])

    assert r.status_code == 201, r.text
    invoice = r.json()
    assert invoice["amount"] == {"amount": "3250.50", "currency": "NGN"}
    assert (invoice["status"], invoice["escrow_id"], invoice["paid_at"]) == ("PENDING", None, None)
    assert (invoice["seller_id"], invoice["buyer_id"], invoice["due_date"]) == (
        parties["seller_id"], parties["buyer_id"], due(),
    )  # fmt: skip
    assert invoice["number"].startswith("INV-") and len(invoice["number"]) >= 10
    assert [i["total"] for i in invoice["items"]] == [
        {"amount": "3000.00", "currency": "NGN"}, {"amount": "250.50", "currency": "NGN"},
    ]  # fmt: skip
    for reader in (parties["seller"], parties["buyer"], admin):
        assert reader.get(f"/v1/invoices/{invoice['id']}").json() == invoice
    assert_problem(parties["stranger"].get(f"/v1/invoices/{invoice['id']}"), 404, "not_found")
    assert_problem(parties["stranger"].get("/v1/invoices/not-a-uuid"), 404, "not_found")
    [created] = audit_rows(owner_conn, invoice["id"], model.CREATED)
    assert created["actor_id"] is not None and str(created["actor_id"]) == parties["seller_id"]
    assert created["payload_after"]["invoice"] == invoice


def test_invoice_numbers_are_unique_and_increasing(parties):
    numbers = [bill(parties["seller"], parties["buyer_id"]).json()["number"] for _ in range(3)]

    assert len(set(numbers)) == 3
    assert [int(n.removeprefix("INV-")) for n in numbers] == sorted(int(n.removeprefix("INV-")) for n in numbers)


BAD_CREATES = {
    "line-finer-than-the-currency": ({"items": [{"description": "x", "quantity": "1.5", "unit_price": "0.01"}]},
                                     "items.0"),
    "yen-has-no-decimals": ({"currency": "JPY", "items": [{"description": "x", "quantity": 1, "unit_price": "1.5"}]},
                            "items.0"),
    "price-as-a-number": ({"items": [{"description": "x", "quantity": 1, "unit_price": 10}]}, "items.0.unit_price"),
    "price-with-5-decimals": ({"items": [{"description": "x", "quantity": 1, "unit_price": "1.00001"}]},
                              "items.0.unit_price"),
    "negative-price": ({"items": [{"description": "x", "quantity": 1, "unit_price": "-5.00"}]}, "items.0.unit_price"),
    "zero-quantity": ({"items": [{"description": "x", "quantity": 0, "unit_price": "5.00"}]}, "items.0.quantity"),
    "negative-quantity": ({"items": [{"description": "x", "quantity": "-1", "unit_price": "5.00"}]},
                          "items.0.quantity"),
    "blank-description": ({"items": [{"description": "   ", "quantity": 1, "unit_price": "5.00"}]},
                          "items.0.description"),
    "nothing-billed": ({"items": [{"description": "free", "quantity": 1, "unit_price": "0.00"}]}, "items"),
    "no-items": ({"items": []}, "items"),
    "too-large": ({"items": [{"description": "x", "quantity": 999999999, "unit_price": "999999999999.00"}]}, "items"),
    "unknown-currency": ({"currency": "XXX"}, "currency"),
    "due-yesterday": ({"due_date": (date.today() - timedelta(days=2)).isoformat()}, "due_date"),
    "not-a-date": ({"due_date": "soon"}, "due_date"),
    "unknown-field": ({"amount": "5.00"}, "amount"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_CREATES))
def test_a_bad_invoice_is_422_naming_the_field_and_nothing_is_created(parties, owner_conn, case):
    changes, field = BAD_CREATES[case]
    before = row(owner_conn, "SELECT count(*) FROM invoices WHERE seller_id = %s", parties["seller_id"])

    problem = assert_problem(bill(parties["seller"], parties["buyer_id"], **changes), 422, "validation_error")

    assert field in [e["field"] for e in problem["errors"]], problem
    assert row(owner_conn, "SELECT count(*) FROM invoices WHERE seller_id = %s", parties["seller_id"]) == before


def test_the_buyer_must_be_someone_else_who_can_pay_and_a_missing_one_tells_nothing(parties, person, owner_conn):
    seller = parties["seller"]
    auditor_id = me(person("auditor"))

    myself = assert_problem(bill(seller, parties["seller_id"]), 422, "validation_error")
    missing = assert_problem(bill(seller, str(uuid.uuid4())), 422, "validation_error")
    staff = assert_problem(bill(seller, auditor_id), 422, "validation_error")

    assert myself["errors"][0]["field"] == "buyer_id"
    assert missing["errors"] == staff["errors"] == [{"field": "buyer_id", "message": "no user who can pay invoices"}]
    assert row(owner_conn, "SELECT count(*) FROM invoices WHERE seller_id = %s", parties["seller_id"]) == (0,)


def test_staff_neither_bill_nor_are_billed(parties, admin):
    assert_problem(bill(admin, parties["buyer_id"]), 403, "forbidden")


# ------------------------------------------------------------------------------ change


def test_a_change_is_audited_with_only_what_changed_before_and_after(parties, invoice, owner_conn):
    items = [{"description": "Bags of cement", "quantity": 3, "unit_price": "1500.00"}]

    r = parties["seller"].patch(f"/v1/invoices/{invoice['id']}", json={"items": items, "due_date": due(30)})

    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["amount"] == {"amount": "4500.00", "currency": "NGN"}
    assert (changed["due_date"], changed["version"], changed["number"]) == (due(30), 2, invoice["number"])
    assert parties["buyer"].get(f"/v1/invoices/{invoice['id']}").json() == changed
    [updated] = audit_rows(owner_conn, invoice["id"], model.UPDATED)
    assert set(updated["payload_before"]) == set(updated["payload_after"]) == {"items", "amount", "due_date"}
    assert updated["payload_before"]["amount"] == invoice["amount"]
    assert updated["payload_after"]["amount"] == changed["amount"]
    assert (updated["payload_before"]["due_date"], updated["payload_after"]["due_date"]) == (due(), due(30))
    assert updated["payload_after"]["items"] == changed["items"]


def test_a_change_of_currency_reprices_the_lines_and_refuses_what_the_new_one_cannot_hold(parties, invoice):
    seller, path = parties["seller"], f"/v1/invoices/{invoice['id']}"

    problem = assert_problem(seller.patch(path, json={"currency": "JPY"}), 422, "validation_error")  # 250.50 JPY

    assert problem["errors"][0]["field"] == "items.1"
    assert seller.get(path).json() == invoice
    usd = seller.patch(path, json={"currency": "USD"}).json()
    assert usd["amount"] == {"amount": "3250.50", "currency": "USD"}


def test_a_change_that_changes_nothing_writes_nothing(parties, invoice, owner_conn):
    r = parties["seller"].patch(f"/v1/invoices/{invoice['id']}", json={"due_date": invoice["due_date"]})

    assert r.status_code == 200 and r.json() == invoice
    assert audit_rows(owner_conn, invoice["id"], model.UPDATED) == []


def test_only_the_seller_changes_a_pending_invoice_and_a_refusal_changes_nothing(parties, invoice, admin):
    path = f"/v1/invoices/{invoice['id']}"
    body = {"due_date": due(60)}

    assert_problem(parties["buyer"].patch(path, json=body), 403, "forbidden")
    assert_problem(admin.patch(path, json=body), 403, "forbidden")
    assert_problem(parties["stranger"].patch(path, json=body), 404, "not_found")
    assert_problem(parties["seller"].patch(path, json={}), 422, "validation_error")
    assert_problem(parties["seller"].patch(path, json={"buyer_id": parties["seller_id"]}), 422, "validation_error")
    assert_problem(parties["seller"].patch(path, json={"status": "PAID"}), 422, "validation_error")
    assert parties["seller"].get(path).json() == invoice


def test_an_overdue_or_paid_invoice_cannot_be_changed(parties, invoice, wallet, owner_conn):
    seller, path = parties["seller"], f"/v1/invoices/{invoice['id']}"
    make_overdue(owner_conn, invoice["id"])
    overdue = seller.get(path).json()

    assert overdue["status"] == "OVERDUE"
    problem = assert_problem(seller.patch(path, json={"due_date": due(60)}), 409, "invalid_state_transition")
    assert "PENDING" in problem["detail"]
    _, account = wallet("NGN", "5000.00", client=parties["buyer"])
    assert pay(parties["buyer"], invoice["id"], account).status_code == 200  # OVERDUE -> PAID
    assert_problem(seller.patch(path, json={"due_date": due(60)}), 409, "invalid_state_transition")
    assert seller.get(path).json()["status"] == "PAID"


# ------------------------------------------------------------------------------ delete


def test_deleting_an_unpaid_invoice_cancels_it_keeps_it_and_audits_it(parties, invoice, admin, owner_conn):
    path = f"/v1/invoices/{invoice['id']}"

    assert_problem(parties["buyer"].delete(path), 403, "forbidden")
    assert_problem(parties["stranger"].delete(path), 404, "not_found")
    r = parties["seller"].delete(path)

    assert r.status_code == 204, r.text
    for party in (parties["seller"], parties["buyer"]):
        assert_problem(party.get(path), 404, "not_found")
        assert invoice["id"] not in [i["id"] for i in party.get("/v1/invoices").json()["items"]]
    kept = admin.get(path).json()
    assert kept["status"] == "CANCELLED" and kept["deleted_at"] is not None
    assert_problem(parties["seller"].delete(path), 404, "not_found")
    assert_problem(parties["seller"].patch(path, json={"due_date": due(3)}), 404, "not_found")
    [deleted] = audit_rows(owner_conn, invoice["id"], model.DELETED)
    assert (deleted["payload_before"]["status"], deleted["payload_after"]["status"]) == ("PENDING", "CANCELLED")


def test_a_paid_invoice_cannot_be_deleted(parties, invoice, wallet):
    _, account = wallet("NGN", "5000.00", client=parties["buyer"])
    assert pay(parties["buyer"], invoice["id"], account).status_code == 200

    assert_problem(parties["seller"].delete(f"/v1/invoices/{invoice['id']}"), 409, "invalid_state_transition")
    assert parties["seller"].get(f"/v1/invoices/{invoice['id']}").json()["status"] == "PAID"


# ------------------------------------------------------------------------------ list


def test_the_list_is_the_callers_own_by_role_and_status_a_page_at_a_time(parties, person):
    seller, buyer, other = parties["seller"], parties["buyer"], person()
    billed = [bill(seller, parties["buyer_id"]).json()["id"] for _ in range(3)]
    billing = bill(buyer, me(other)).json()["id"]  # the buyer bills someone too
    parties["seller"].delete(f"/v1/invoices/{billed[0]}")

    def ids(client: Any, query: str = "") -> list[str]:
        return [i["id"] for i in client.get(f"/v1/invoices{query}").json()["items"]]

    assert ids(seller) == [billed[2], billed[1]]  # newest first; the deleted one left out
    assert ids(buyer) == [billing, billed[2], billed[1]]
    assert ids(buyer, "?role=buyer") == [billed[2], billed[1]]
    assert ids(buyer, "?role=seller") == [billing]
    assert ids(buyer, "?status=PENDING&role=seller") == [billing]
    assert ids(buyer, "?status=PAID") == []
    assert ids(parties["stranger"]) == []
    first = buyer.get("/v1/invoices?limit=2").json()
    second = buyer.get(f"/v1/invoices?limit=2&cursor={first['next_cursor']}").json()
    assert [i["id"] for i in first["items"] + second["items"]] == [billing, billed[2], billed[1]]
    assert second["next_cursor"] is None
    assert_problem(buyer.get("/v1/invoices?status=LOST"), 422, "validation_error")
    assert_problem(buyer.get("/v1/invoices?role=admin"), 422, "validation_error")
    assert_problem(buyer.get("/v1/invoices?cursor=nonsense"), 422, "validation_error")


# ------------------------------------------------------------------------------ pay


def pay(client: Any, invoice_id: str, account_id: str, key: Any = True) -> Any:
    return client.post(f"/v1/invoices/{invoice_id}/pay", json={"account_id": account_id}, idempotency_key=key)


def make_overdue(owner_conn: Any, invoice_id: str) -> None:
    """Its due date moved to yesterday (as the owner: the routes refuse a past due date),
    then the overdue-invoices job, as scheduled."""
    from functions.invoices import overdue

    with owner_conn.cursor() as cur:
        cur.execute(
            "UPDATE invoices SET due_date = (now() AT TIME ZONE 'UTC')::date - 1 WHERE id = %s AND status = 'PENDING'",
            (invoice_id,),
        )
    assert overdue.handler({"id": "test"}, None)["flagged"] >= 1


def money_state(owner_conn: Any, invoice_id: str, account_id: str) -> tuple[Any, ...]:
    """What a refused or crashed payment must leave as it was."""
    invoice = row(owner_conn, "SELECT status, version, escrow_id FROM invoices WHERE id = %s", invoice_id)
    escrows = row(owner_conn, "SELECT count(*) FROM escrows WHERE invoice_id = %s", invoice_id)
    accounts = row(owner_conn, "SELECT count(*) FROM accounts WHERE kind = 'escrow'")
    return invoice, escrows, accounts, balance(owner_conn, account_id)


def test_paying_moves_the_amount_into_a_funded_escrow_and_marks_the_invoice_paid(parties, invoice, wallet, owner_conn):
    buyer = parties["buyer"]
    _, account = wallet("NGN", "5000.00", client=buyer)

    r = pay(buyer, invoice["id"], account)

    assert r.status_code == 200, r.text
    paid = r.json()
    assert paid["status"] == "PAID" and paid["escrow_id"] and paid["paid_at"]
    assert parties["seller"].get(f"/v1/invoices/{invoice['id']}").json() == paid
    assert balance(owner_conn, account) == Decimal("1749.50")
    status, amount, currency, escrow_account, buyer_id, seller_id = row(
        owner_conn,
        "SELECT status, amount, currency, account_id, buyer_id, seller_id FROM escrows WHERE id = %s AND invoice_id = %s",
        paid["escrow_id"], invoice["id"],
    )  # fmt: skip
    assert (status, amount, currency) == ("FUNDED", Decimal("3250.50"), "NGN")
    assert (str(buyer_id), str(seller_id)) == (parties["buyer_id"], parties["seller_id"])
    assert balance(owner_conn, str(escrow_account)) == Decimal("3250.50")
    assert row(owner_conn, "SELECT owner_id, kind FROM accounts WHERE id = %s", escrow_account) == (None, "escrow")
    actions = [r["action"] for r in audit_rows(owner_conn, invoice["id"])]
    assert actions == [model.CREATED, "escrow.created", "escrow.funded", model.PAID]
    [audited] = audit_rows(owner_conn, invoice["id"], model.PAID)
    assert audited["payload_before"]["invoice"]["status"] == "PENDING"
    assert audited["payload_after"]["invoice"] == paid


def test_without_the_funds_the_payment_is_409_and_nothing_changes(parties, invoice, wallet, owner_conn):
    buyer = parties["buyer"]
    _, account = wallet("NGN", "3250.49", client=buyer)
    before = money_state(owner_conn, invoice["id"], account)

    assert_problem(pay(buyer, invoice["id"], account), 409, "insufficient_funds")

    assert money_state(owner_conn, invoice["id"], account) == before
    assert buyer.get(f"/v1/invoices/{invoice['id']}").json() == invoice
    [failed] = audit_rows(owner_conn, invoice["id"], model.PAYMENT_FAILED)
    assert failed["metadata"]["error"]["code"] == "insufficient_funds"
    assert [r["action"] for r in audit_rows(owner_conn, invoice["id"])] == [model.CREATED, model.PAYMENT_FAILED]


def test_only_the_buyer_pays_from_their_own_wallet_in_the_invoices_currency(parties, invoice, wallet, owner_conn):
    buyer, path = parties["buyer"], invoice["id"]
    _, account = wallet("NGN", "5000.00", client=buyer)
    _, dollars = wallet("USD", "5000.00", client=buyer)
    stranger, strangers = wallet("NGN", "5000.00", client=parties["stranger"])
    before = money_state(owner_conn, invoice["id"], account)

    assert_problem(pay(stranger, path, strangers), 404, "not_found")
    assert_problem(pay(parties["seller"], path, account), 403, "forbidden")
    assert_problem(pay(buyer, path, strangers), 404, "not_found")
    assert_problem(pay(buyer, path, dollars), 422, "validation_error")
    assert_problem(pay(buyer, str(uuid.uuid4()), account), 404, "not_found")
    assert_problem(pay(buyer, "not-an-id", account), 404, "not_found")

    assert money_state(owner_conn, invoice["id"], account) == before
    assert balance(owner_conn, strangers) == Decimal("5000.00")


def test_paying_twice_is_409_and_a_replay_with_the_same_key_is_the_same_answer(parties, invoice, wallet, owner_conn):
    buyer = parties["buyer"]
    _, account = wallet("NGN", "10000.00", client=buyer)
    key = str(uuid.uuid4())

    first = pay(buyer, invoice["id"], account, key=key)
    replay = pay(buyer, invoice["id"], account, key=key)
    again = pay(buyer, invoice["id"], account)

    assert first.status_code == 200, first.text
    assert (replay.status_code, replay.text, replay.headers.get("Idempotent-Replayed")) == (200, first.text, "true")
    problem = assert_problem(again, 409, "invalid_state_transition")
    assert "PAID" in problem["detail"]
    assert balance(owner_conn, account) == Decimal("6749.50")
    assert row(owner_conn, "SELECT count(*) FROM escrows WHERE invoice_id = %s", invoice["id"]) == (1,)


def test_paying_a_version_the_seller_has_since_changed_is_409_and_pays_nothing(parties, invoice, wallet, owner_conn):
    buyer, path = parties["buyer"], f"/v1/invoices/{invoice['id']}"
    _, account = wallet("NGN", "10000.00", client=buyer)
    agreed = buyer.get(path).json()["version"]
    raised = parties["seller"].patch(
        path, json={"items": [{"description": "More", "quantity": 2, "unit_price": "4000.00"}]}
    )
    before = money_state(owner_conn, invoice["id"], account)

    stale = buyer.post(f"{path}/pay", json={"account_id": account, "version": agreed}, idempotency_key=True)

    problem = assert_problem(stale, 409, "conflict")
    assert f"since version {agreed} (it is at version {agreed + 1}, 8000.00 NGN)" in problem["detail"]
    assert money_state(owner_conn, invoice["id"], account) == before
    current = buyer.post(f"{path}/pay", json={"account_id": account, "version": raised.json()["version"]},
                         idempotency_key=True)  # fmt: skip
    assert current.status_code == 200, current.text
    assert balance(owner_conn, account) == Decimal("2000.00")


def test_two_devices_paying_at_once_with_different_keys_pay_once(parties, invoice, wallet, owner_conn):
    from tests.e2e.conftest import Client

    buyer = parties["buyer"]
    _, account = wallet("NGN", "10000.00", client=buyer)
    n = 2
    barrier, responses = threading.Barrier(n), [None] * n

    def device(i: int) -> None:
        client = Client(buyer.base_url, buyer.token)
        barrier.wait(timeout=30)
        responses[i] = pay(client, invoice["id"], account)

    threads = [threading.Thread(target=device, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    [refused] = [r for r in responses if r.status_code == 409]
    assert refused.json()["code"] == "invalid_state_transition"
    assert balance(owner_conn, account) == Decimal("6749.50")
    assert row(owner_conn, "SELECT count(*) FROM escrows WHERE invoice_id = %s", invoice["id"]) == (1,)
    assert len(audit_rows(owner_conn, invoice["id"], model.PAID)) == 1


def test_ten_devices_racing_pay_once(parties, invoice, wallet, owner_conn):
    from tests.e2e.conftest import Client

    buyer = parties["buyer"]
    _, account = wallet("NGN", "100000.00", client=buyer)
    n = 10
    barrier, responses = threading.Barrier(n), [None] * n

    def device(i: int) -> None:
        client = Client(buyer.base_url, buyer.token)
        barrier.wait(timeout=30)
        responses[i] = pay(client, invoice["id"], account)

    threads = [threading.Thread(target=device, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(r.status_code for r in responses) == [200] + [409] * (n - 1)
    assert balance(owner_conn, account) == Decimal("100000.00") - Decimal("3250.50")


@contextlib.contextmanager
def crash_when_paid(owner_conn: Any, invoice_id: str) -> Iterator[None]:
    """While active, the invoice's UPDATE to PAID (after its escrow was opened and funded,
    in the same statement) fails with an unexpected error, once: a crash midway."""
    name = f"test_fault_{uuid.uuid4().hex[:8]}"
    with owner_conn.cursor() as cur:
        cur.execute(f"CREATE SEQUENCE {name}_seq")
        cur.execute(
            f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.id = %(id)s::uuid AND NEW.status = 'PAID' AND nextval('{name}_seq') = 1 THEN
                RAISE EXCEPTION 'simulated crash mid-payment: secret internals';
              END IF;
              RETURN NEW;
            END $$
            """,
            {"id": invoice_id},
        )
        cur.execute(f"CREATE TRIGGER {name} BEFORE UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION {name}()")
    try:
        yield
    finally:
        with owner_conn.cursor() as cur:
            cur.execute(f"DROP TRIGGER {name} ON invoices")
            cur.execute(f"DROP FUNCTION {name}()")
            cur.execute(f"DROP SEQUENCE {name}_seq")


def test_a_payment_that_crashes_midway_leaves_no_trace_and_its_retry_pays(parties, invoice, wallet, owner_conn):
    buyer = parties["buyer"]
    _, account = wallet("NGN", "5000.00", client=buyer)
    before = money_state(owner_conn, invoice["id"], account)
    entries = row(owner_conn, "SELECT count(*) FROM entries")
    key = str(uuid.uuid4())

    with crash_when_paid(owner_conn, invoice["id"]):
        crashed = pay(buyer, invoice["id"], account, key=key)

    problem = assert_problem(crashed, 500, "internal_error")
    assert "secret" not in crashed.text
    assert problem["detail"]
    assert money_state(owner_conn, invoice["id"], account) == before
    assert row(owner_conn, "SELECT count(*) FROM entries") == entries
    assert [r["action"] for r in audit_rows(owner_conn, invoice["id"])] == [model.CREATED, model.PAYMENT_FAILED]
    retried = pay(buyer, invoice["id"], account, key=key)  # the key's claim was rolled back with the rest
    assert retried.status_code == 200, retried.text
    assert "Idempotent-Replayed" not in retried.headers
    assert balance(owner_conn, account) == Decimal("1749.50")


# ------------------------------------------------------------------------------ the audit trail


def test_every_invoice_action_is_audited(parties, wallet, owner_conn):
    """One walk through every invoice event: each action of model.ACTIONS is written."""
    seller, buyer = parties["seller"], parties["buyer"]
    _, account = wallet("NGN", "100.00", client=buyer)
    seen: set[str] = set()
    for n in range(4):
        invoice = bill(seller, parties["buyer_id"]).json()
        if n == 0:
            seller.patch(f"/v1/invoices/{invoice['id']}", json={"due_date": due(20)})
        elif n == 1:
            seller.delete(f"/v1/invoices/{invoice['id']}")
        elif n == 2:
            make_overdue(owner_conn, invoice["id"])
            assert_problem(pay(buyer, invoice["id"], account), 409, "insufficient_funds")
        else:
            wallet("NGN", "5000.00", client=buyer)
            _, rich = wallet("NGN", "5000.00", client=buyer)
            assert pay(buyer, invoice["id"], rich).status_code == 200
        seen |= {r["action"] for r in audit_rows(owner_conn, invoice["id"]) if r["action"].startswith("invoice.")}

    assert seen == set(model.ACTIONS)


# ------------------------------------------------------------------------------ merchant API keys


def test_a_merchants_server_bills_with_an_invoices_write_key_and_reads_with_invoices_read(make_user, client, person,
                                                                                           owner_conn):  # fmt: skip
    merchant = make_user("merchant")

    def key(scopes: list[str]) -> str:
        r = merchant["client"].post("/v1/api-keys", json={"name": "billing", "scopes": scopes})
        assert r.status_code == 201, r.text
        return str(r.json()["key"])

    writer, reader = key(["invoices:write"]), key(["invoices:read"])
    buyer_id = me(person())
    body = {"buyer_id": buyer_id, "currency": "NGN", "items": ITEMS, "due_date": due()}

    created = client.post("/v1/invoices", token=writer, json=body)

    assert created.status_code == 201, created.text
    invoice = created.json()
    assert invoice["seller_id"] == str(merchant["id"])
    [audited] = audit_rows(owner_conn, invoice["id"], model.CREATED)
    assert (audited["actor_type"], str(audited["actor_id"])) == ("api_key", str(merchant["id"]))
    assert client.get(f"/v1/invoices/{invoice['id']}", token=reader).json() == invoice
    assert_problem(client.get(f"/v1/invoices/{invoice['id']}", token=writer), 403, "forbidden")
    assert_problem(client.post("/v1/invoices", token=reader, json=body), 403, "forbidden")
    assert_problem(client.delete(f"/v1/invoices/{invoice['id']}", token=reader), 403, "forbidden")
