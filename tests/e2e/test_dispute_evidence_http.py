"""Dispute evidence over HTTP, with the evidence bucket in the local AWS stand-in (moto).

The buyer or seller of a disputed escrow adds text or declares a document; a document gets
a presigned POST for a key the server chose, is uploaded straight to the bucket, and becomes
evidence only when the stored object matches the declared size, type and SHA-256 (moto,
unlike S3, enforces no POST policy: a wrong upload is accepted by it and refused by the
confirmation). Everything is audited; bad input is a 4xx that changes nothing; a stranger
gets 404, an administrator reads but does not submit.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
import uuid

import psycopg2.extras
import pytest
import requests

from ledgerline import config
from ledgerline.audit import Actor
from ledgerline.db import transaction
from ledgerline.ledger import sql
from ledgerline.ledger.testing import create_user, new_wallet, user_actor
from tests.e2e.conftest import Client, session_token

PDF = b"%PDF-1.7\n" + b"evidence " * 400 + b"\n%%EOF\n"


@pytest.fixture(scope="module")
def party(api):
    """party(role) -> (user id, client): a user with a session's real access token."""

    def make(role: str = "user") -> tuple[uuid.UUID, Client]:
        user_id = transaction(lambda cur: create_user(cur, role))
        return user_id, Client(api, session_token(user_id, role))

    return make


def escrow_step(cur, escrow_id, to: str, args: dict, actor: Actor) -> dict:
    cur.execute(
        "SELECT escrow_transition(p_escrow => %s, p_to => %s, p_args => %s, p_actor => %s, p_audit => NULL) AS r",
        (escrow_id, to, sql.jsonb(args), sql.actor_json(actor)),
    )
    answer = cur.fetchone()["r"]
    assert "escrow" in answer, answer
    return answer["escrow"]


def open_escrow(buyer: tuple[uuid.UUID, Client], seller_id, *, dispute: bool = True) -> str:
    """An escrow of NGN 50.00 from buyer to seller, funded, and disputed by the buyer,
    through the escrow routes."""
    buyer_id, client = buyer
    wallet = new_wallet("NGN", funded="100.00", owner_id=buyer_id)
    made = client.post(
        "/v1/escrows",
        idempotency_key=True,
        json={"seller_id": str(seller_id), "amount": "50.00", "currency": "NGN", "description": "a used bicycle"},
    )
    assert made.status_code == 201, made.text
    escrow_id = made.json()["id"]
    funded = client.post(f"/v1/escrows/{escrow_id}/fund", idempotency_key=True, json={"account_id": str(wallet.id)})
    assert funded.status_code == 200, funded.text
    if dispute:
        raised = client.post(f"/v1/escrows/{escrow_id}/dispute", idempotency_key=True, json={"reason": "never arrived"})
        assert raised.status_code == 200 and raised.json()["status"] == "DISPUTED", raised.text
    return str(escrow_id)


def resolve_through_the_api(admin: Client, escrow_id: str) -> None:
    r = admin.post(
        f"/v1/admin/escrows/{escrow_id}/resolve",
        idempotency_key=True,
        json={"outcome": "refund", "reason": "refund it"},
    )
    assert r.status_code == 200 and r.json()["status"] == "RESOLVED_REFUNDED", r.text


def resolve_counting(escrow_id: str) -> int:
    """An administrator refunds the buyer (escrow_transition, as the resolve route runs it:
    party_id null is the administrator's edge); returns how much evidence the decision saw,
    counted in its own transaction after the transition (which holds the escrow row until
    it commits). Through the routine, not the route, so that the count is the decision's."""
    admin_id = transaction(lambda cur: create_user(cur, "admin"))

    def work(cur) -> int:
        args = {"party_id": None, "reason": "refund it"}
        escrow_step(cur, escrow_id, "RESOLVED_REFUNDED", args, user_actor(admin_id, "admin"))
        cur.execute(
            "SELECT count(*) AS n FROM dispute_evidence v JOIN disputes d ON d.id = v.dispute_id"
            " WHERE d.escrow_id = %s",
            (escrow_id,),
        )
        return int(cur.fetchone()["n"])

    return transaction(work)


@pytest.fixture
def dispute(party):
    """A disputed escrow: {"id", "buyer", "seller"} with (user id, client) pairs."""
    buyer, seller = party(), party()
    return {"id": open_escrow(buyer, seller[0]), "buyer": buyer, "seller": seller}


def evidence_rows(conn, escrow_id: str) -> list[dict]:
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(
            "SELECT v.* FROM dispute_evidence v JOIN disputes d ON d.id = v.dispute_id WHERE d.escrow_id = %s"
            " ORDER BY v.created_at",
            (escrow_id,),
        )
        return [dict(r) for r in cur.fetchall()]


def audit_rows(conn, escrow_id: str) -> list[dict]:
    with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute(
            "SELECT action, category, actor_id, resource_id, payload_after, subject_ids FROM audit_log"
            " WHERE resource_type = 'dispute_evidence' AND metadata->>'escrow_id' = %s ORDER BY occurred_at",
            (escrow_id,),
        )
        return [dict(r) for r in cur.fetchall()]


def document(content: bytes = PDF, **over) -> dict:
    return {"filename": "receipt.pdf", "content_type": "application/pdf", "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(), **over}  # fmt: skip


def upload(form: dict, content: bytes, **field_over) -> requests.Response:
    fields = {**form["fields"], **field_over}
    return requests.post(form["url"], data=fields, files={"file": ("receipt.pdf", content)}, timeout=30)


def test_text_evidence_is_recorded_audited_and_listed_for_the_parties_and_readers(dispute, admin, auditor, owner_conn):
    buyer_id, buyer = dispute["buyer"]
    seller_id, seller = dispute["seller"]
    url = f"/v1/escrows/{dispute['id']}/dispute/evidence"
    r = buyer.post(url, json={"text": "The courier's tracking shows no delivery."})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["text"] == "The courier's tracking shows no delivery." and made["document"] is None
    assert made["upload"] is None and made["submitted_by"] == str(buyer_id)

    [row] = audit_rows(owner_conn, dispute["id"])
    assert row["action"] == "dispute.evidence_submitted" and row["category"] == "escrow"
    assert str(row["actor_id"]) == str(buyer_id) and row["resource_id"] == made["id"]
    assert {str(s) for s in row["subject_ids"]} >= {str(buyer_id), str(seller_id)}
    assert row["payload_after"] == {k: v for k, v in made.items() if k != "upload"}

    for reader in (buyer, seller, admin, auditor):
        listed = reader.get(url)
        assert listed.status_code == 200, listed.text
        assert [e["id"] for e in listed.json()["items"]] == [made["id"]]


def test_a_document_is_uploaded_with_the_presigned_post_and_confirmed(dispute, owner_conn):
    _, seller = dispute["seller"]
    url = f"/v1/escrows/{dispute['id']}/dispute/evidence"
    r = seller.post(url, json={"text": "Here is the dispatch receipt.", "document": document()})
    assert r.status_code == 201, r.text
    made = r.json()
    assert r.headers["cache-control"] == "no-store"
    assert made["document"]["uploaded_at"] is None and made["document"]["size"] == len(PDF)
    form = made["upload"]
    key = form["fields"]["key"]
    assert key == f"evidence/{dispute['id']}/{made['id']}"  # the server's key, not the file name
    policy = json.loads(base64.b64decode(form["fields"]["policy"]))
    conditions = policy["conditions"]
    assert {"key": key} in conditions
    assert ["content-length-range", len(PDF), len(PDF)] in conditions
    assert {"Content-Type": "application/pdf"} in conditions
    assert {"x-amz-meta-sha256": hashlib.sha256(PDF).hexdigest()} in conditions

    assert upload(form, PDF).status_code in (200, 201, 204)
    confirm = f"{url}/{made['id']}/confirm"
    done = seller.post(confirm)
    assert done.status_code == 200, done.text
    assert done.json()["document"]["uploaded_at"] is not None
    [stored] = evidence_rows(owner_conn, dispute["id"])
    assert stored["uploaded_at"] is not None and stored["object_key"] == key
    actions = [a["action"] for a in audit_rows(owner_conn, dispute["id"])]
    assert actions == ["dispute.evidence_submitted", "dispute.evidence_uploaded"]

    again = seller.post(confirm)  # confirming again answers the same, and writes nothing
    assert again.status_code == 200 and again.json() == done.json()
    assert len(audit_rows(owner_conn, dispute["id"])) == 2

    # The form is still valid: other bytes of the same size and type replace the current
    # object, never the confirmed version, which is what the download link names.
    forged = PDF.replace(b"evidence", b"forgery!")
    assert upload(form, forged).status_code in (200, 201, 204)
    listed = seller.get(url)
    assert listed.headers["cache-control"] == "no-store"
    [item] = listed.json()["items"]
    link = item["document"]["download"]
    fetched = requests.get(link["url"], timeout=30)
    assert fetched.status_code == 200 and fetched.content == PDF
    assert "attachment" in fetched.headers.get("content-disposition", "")


@pytest.mark.parametrize(
    "content, fields, wrong",
    [
        (PDF.replace(b"evidence", b"forgery!"), {}, "SHA-256"),  # same size, other bytes
        (PDF + b"more", {}, "bytes"),
        (PDF, {"Content-Type": "text/html"}, "type"),
    ],
)
def test_an_upload_that_is_not_what_was_declared_never_becomes_evidence(dispute, owner_conn, content, fields, wrong):
    _, buyer = dispute["buyer"]
    url = f"/v1/escrows/{dispute['id']}/dispute/evidence"
    made = buyer.post(url, json={"document": document()}).json()
    confirm = f"{url}/{made['id']}/confirm"
    nothing = buyer.post(confirm)
    assert nothing.status_code == 409 and nothing.json()["code"] == "conflict"  # nothing uploaded yet
    [pending] = buyer.get(url).json()["items"]
    assert pending["document"]["download"] is None  # nothing confirmed, nothing to fetch

    assert upload(made["upload"], content, **fields).status_code in (200, 201, 204)  # moto takes anything
    audited = audit_rows(owner_conn, dispute["id"])
    r = buyer.post(confirm)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "validation_error" and wrong in r.json()["detail"]
    assert evidence_rows(owner_conn, dispute["id"])[0]["uploaded_at"] is None
    assert audit_rows(owner_conn, dispute["id"]) == audited

    assert upload(made["upload"], PDF).status_code in (200, 201, 204)  # the right file, within the form's time
    assert buyer.post(confirm).status_code == 200
    [item] = buyer.get(url).json()["items"]
    assert requests.get(item["document"]["download"]["url"], timeout=30).content == PDF


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "body"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 10001}, "text"),
        ({"document": document(content_type="application/zip")}, "document.content_type"),
        ({"document": document(size=10 * 1024 * 1024 + 1)}, "document.size"),
        ({"document": document(size=0)}, "document.size"),
        ({"document": document(sha256="AB" * 32)}, "document.sha256"),
        ({"document": document(sha256="abc")}, "document.sha256"),
        ({"document": document(filename="../../etc/passwd")}, "document.filename"),
        ({"document": document(filename="a\u0007b.pdf")}, "document.filename"),
        ({"text": "hi", "extra": 1}, "extra"),
    ],
)
def test_bad_evidence_is_a_422_naming_the_field_and_records_nothing(dispute, owner_conn, body, field):
    _, buyer = dispute["buyer"]
    r = buyer.post(f"/v1/escrows/{dispute['id']}/dispute/evidence", json=body)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "validation_error"
    assert field in {e["field"] for e in problem["errors"]}
    assert evidence_rows(owner_conn, dispute["id"]) == []
    assert audit_rows(owner_conn, dispute["id"]) == []


def test_the_size_limit_is_the_setting(dispute, monkeypatch):
    monkeypatch.setenv("LEDGERLINE_EVIDENCE_MAX_BYTES", "1000")
    config.settings.cache_clear()
    try:
        _, buyer = dispute["buyer"]
        r = buyer.post(f"/v1/escrows/{dispute['id']}/dispute/evidence", json={"document": document()})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "document.size"
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()


def test_strangers_get_404_admins_may_not_submit_and_parties_confirm_only_their_own(dispute, party, admin, owner_conn):
    _, buyer = dispute["buyer"]
    _, seller = dispute["seller"]
    _, stranger = party()
    url = f"/v1/escrows/{dispute['id']}/dispute/evidence"
    made = buyer.post(url, json={"document": document()}).json()
    upload(made["upload"], PDF)
    before = evidence_rows(owner_conn, dispute["id"]), audit_rows(owner_conn, dispute["id"])

    for r in (
        stranger.post(url, json={"text": "I saw it all"}),
        stranger.get(url),
        stranger.post(f"{url}/{made['id']}/confirm"),
        seller.post(f"{url}/{made['id']}/confirm"),  # the buyer's document, not the seller's
        buyer.post(f"/v1/escrows/{uuid.uuid4()}/dispute/evidence", json={"text": "no such escrow"}),
        buyer.post("/v1/escrows/not-a-uuid/dispute/evidence", json={"text": "no such escrow"}),
        buyer.post(f"{url}/{uuid.uuid4()}/confirm"),
    ):
        assert r.status_code == 404, r.text
        assert r.json()["code"] == "not_found"
    refused = admin.post(url, json={"text": "an administrator's opinion"})
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert (evidence_rows(owner_conn, dispute["id"]), audit_rows(owner_conn, dispute["id"])) == before


def test_evidence_is_taken_only_while_the_dispute_is_open(party, admin, owner_conn):
    (buyer_id, buyer), (seller_id, _) = party(), party()
    funded = open_escrow((buyer_id, buyer), seller_id, dispute=False)
    r = buyer.post(f"/v1/escrows/{funded}/dispute/evidence", json={"text": "not disputed yet"})
    assert r.status_code == 409 and r.json()["code"] == "conflict"
    assert evidence_rows(owner_conn, funded) == []

    disputed = open_escrow((buyer_id, buyer), seller_id)
    url = f"/v1/escrows/{disputed}/dispute/evidence"
    made = buyer.post(url, json={"document": document()}).json()
    upload(made["upload"], PDF)
    resolve_through_the_api(admin, disputed)
    late = buyer.post(url, json={"text": "one more thing"})
    assert late.status_code == 409 and late.json()["code"] == "conflict"
    unconfirmed = buyer.post(f"{url}/{made['id']}/confirm")
    assert unconfirmed.status_code == 409 and unconfirmed.json()["code"] == "conflict"
    assert [e["uploaded_at"] for e in evidence_rows(owner_conn, disputed)] == [None]


def test_evidence_racing_the_resolution_is_never_recorded_after_it(party, owner_conn):
    """Twelve submissions race an administrator's resolution: each is either recorded
    before the decision (201), and seen by it, or refused (409); none lands after it."""
    (buyer_id, buyer), (seller_id, seller) = party(), party()
    escrow_id = open_escrow((buyer_id, buyer), seller_id)
    url = f"/v1/escrows/{escrow_id}/dispute/evidence"
    statuses: list[int] = []
    seen: list[int] = []
    barrier = threading.Barrier(13)

    def submit(client: Client, n: int) -> None:
        barrier.wait()
        statuses.append(client.post(url, json={"text": f"point {n}"}).status_code)

    def decide() -> None:
        barrier.wait()
        seen.append(resolve_counting(escrow_id))

    threads = [threading.Thread(target=submit, args=(buyer if n % 2 else seller, n)) for n in range(12)]
    threads.append(threading.Thread(target=decide))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(statuses) <= {201, 409} and len(statuses) == 12
    rows = evidence_rows(owner_conn, escrow_id)
    assert len(rows) == statuses.count(201)
    assert len(audit_rows(owner_conn, escrow_id)) == len(rows)
    assert seen == [len(rows)]  # what the decision saw is all there is: nothing landed after it


@contextlib.contextmanager
def audit_write_crashes(owner_conn, action: str, marker: str):
    """While active, writing the audit row of ``action`` whose payload mentions ``marker``
    fails as a crash would: after the evidence row, before the commit."""
    name = f"test_fault_{uuid.uuid4().hex[:8]}"
    with owner_conn.cursor() as cur:
        cur.execute(
            f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.action = %(action)s AND NEW.payload_after::text LIKE '%%' || %(marker)s || '%%' THEN
                RAISE EXCEPTION 'simulated crash mid-write: secret internals';
              END IF;
              RETURN NEW;
            END $$
            """,
            {"action": action, "marker": marker},
        )
        cur.execute(f"CREATE TRIGGER {name} BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION {name}()")
    try:
        yield
    finally:
        with owner_conn.cursor() as cur:
            cur.execute(f"DROP TRIGGER {name} ON audit_log")
            cur.execute(f"DROP FUNCTION {name}()")


def test_a_crash_before_the_audit_row_leaves_no_evidence(dispute, owner_conn):
    _, buyer = dispute["buyer"]
    marker = f"crash-{uuid.uuid4().hex[:8]}"
    with audit_write_crashes(owner_conn, "dispute.evidence_submitted", marker):
        r = buyer.post(f"/v1/escrows/{dispute['id']}/dispute/evidence", json={"text": marker})
    assert r.status_code == 500 and r.json()["code"] == "internal_error"
    assert "secret internals" not in r.text
    assert evidence_rows(owner_conn, dispute["id"]) == []
    assert audit_rows(owner_conn, dispute["id"]) == []
    again = buyer.post(f"/v1/escrows/{dispute['id']}/dispute/evidence", json={"text": marker})
    assert again.status_code == 201  # nothing half-done stands in the way


def test_the_other_party_reads_the_evidence_in_their_feed_and_a_stranger_does_not(dispute, party):
    _, buyer = dispute["buyer"]
    _, seller = dispute["seller"]
    _, stranger = party()
    assert buyer.post(f"/v1/escrows/{dispute['id']}/dispute/evidence", json={"text": "photos of the box"}).ok

    def feed(client: Client) -> list[str]:
        r = client.get("/v1/activity", params={"category": "escrow"})
        assert r.status_code == 200, r.text
        return [i["message"] for i in r.json()["items"] if i["action"] == "dispute.evidence_submitted"]

    assert feed(buyer) == ["You added evidence to a dispute"]
    assert feed(seller) == ["Evidence was added to your dispute"]
    assert feed(stranger) == []
