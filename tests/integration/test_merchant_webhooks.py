"""Merchant webhooks end to end below HTTP: an event in the caller's transaction → outbox
→ SQS (moto) → the delivery consumer → a signed POST to a real local server, logged."""

from __future__ import annotations

import http.server
import json
import threading
import uuid

import psycopg2
import pytest

from ledgerline import config
from ledgerline.audit import Actor
from ledgerline.caller import Principal
from ledgerline.db import transaction
from ledgerline.ledger.testing import create_user
from ledgerline.local import workers
from ledgerline.webhooks import delivery, endpoints, events, signing


class Receiver:
    """A merchant's server: records each POST and answers the next status of ``statuses``."""

    def __init__(self, statuses=(200,)):
        self.statuses = list(statuses)
        self.requests = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/ledgerline?src=test"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(statuses=(200,)):
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def merchant(crypto_env, aws_endpoint):
    user_id = transaction(lambda cur: create_user(cur, "merchant"))
    return Principal(id=user_id, role="merchant")


def _actor(principal):
    return Actor(id=principal.id, type=principal.role, ip="127.0.0.1", user_agent="tests")


def _register(principal, url, types=("payment.succeeded",)):
    return transaction(
        lambda cur: endpoints.create(cur, principal, url=url, events=list(types), actor=_actor(principal))
    )


def _emit(principal, type="payment.succeeded", data=None):
    data = data or {"payment_id": str(uuid.uuid4()), "amount": {"amount": "150.00", "currency": "NGN"}}
    return transaction(lambda cur: events.emit(cur, principal.id, type, data))


def _log(principal, endpoint_id):
    items, _ = transaction(lambda cur: endpoints.deliveries(cur, principal, endpoint_id))
    return items


def _delivery_ids(endpoint_id):
    def read(cur):
        cur.execute("SELECT id FROM webhook_deliveries WHERE endpoint_id = %s ORDER BY created_at", (endpoint_id,))
        return [r["id"] for r in cur.fetchall()]

    return transaction(read)


def test_the_event_types_are_the_tables(database_url):
    def read(cur):
        cur.execute("SELECT name, description FROM webhook_event_types")
        return {r["name"]: r["description"] for r in cur.fetchall()}

    assert transaction(read) == events.EVENT_TYPES


def test_an_event_is_signed_delivered_once_and_logged(merchant, receiver):
    server = receiver()
    endpoint = _register(merchant, server.url)
    data = {"payment_id": str(uuid.uuid4()), "amount": {"amount": "150.00", "currency": "NGN"}}

    assert len(_emit(merchant, data=data)) == 1
    workers.deliver_pending("merchant-webhooks")

    [request] = server.requests
    assert request["path"] == "/hooks/ledgerline?src=test"
    assert request["headers"]["Content-Type"] == "application/json"
    signing.verify(request["headers"][signing.HEADER], request["body"], endpoint.secret)
    with pytest.raises(signing.SignatureInvalid):
        signing.verify(request["headers"][signing.HEADER], request["body"], signing.new_secret())
    with pytest.raises(signing.SignatureInvalid):
        signing.verify(request["headers"][signing.HEADER], request["body"] + b" ", endpoint.secret)
    body = json.loads(request["body"])
    assert body["type"] == "payment.succeeded"
    assert body["data"] == data
    [logged] = _log(merchant, endpoint.id)
    assert str(logged.event_id) == body["id"]
    assert logged.status == "succeeded"
    [attempt] = logged.attempts
    assert (attempt.attempt, attempt.outcome, attempt.status_code, attempt.error) == (1, "succeeded", 200, None)
    # A duplicate message (at-least-once) does not POST again.
    assert delivery.attempt(logged.id).done
    assert len(server.requests) == 1


def test_only_the_owners_subscribed_live_endpoints_get_an_event(merchant, receiver, crypto_env):
    other = Principal(id=transaction(lambda cur: create_user(cur, "merchant")), role="merchant")
    subscribed = _register(merchant, receiver().url, ["payment.succeeded", "withdrawal.paid"])
    elsewhere = _register(merchant, receiver().url, ["payment.failed"])
    deleted = _register(merchant, receiver().url, ["payment.succeeded"])
    foreign = _register(other, receiver().url, ["payment.succeeded"])
    transaction(lambda cur: endpoints.delete(cur, merchant, deleted.id, _actor(merchant)))

    assert len(_emit(merchant)) == 1

    assert len(_delivery_ids(subscribed.id)) == 1
    assert _delivery_ids(elsewhere.id) == _delivery_ids(deleted.id) == _delivery_ids(foreign.id) == []
    # No endpoint listens: nothing is stored at all.
    nobody = Principal(id=transaction(lambda cur: create_user(cur, "merchant")), role="merchant")
    assert _emit(nobody) == []


def test_an_event_whose_transaction_rolls_back_leaves_no_trace(merchant, receiver):
    endpoint = _register(merchant, receiver().url)

    class Crash(Exception):
        pass

    def work(cur):
        events.emit(cur, merchant.id, "payment.succeeded", {"payment_id": "p-1"})
        raise Crash

    with pytest.raises(Crash):
        transaction(work)
    assert _delivery_ids(endpoint.id) == []

    def count(cur):
        cur.execute("SELECT count(*) AS n FROM webhook_events WHERE owner_id = %s", (merchant.id,))
        return cur.fetchone()["n"]

    assert transaction(count) == 0


def test_unknown_event_types_are_refused_in_python_and_in_sql(merchant):
    with pytest.raises(ValueError, match="unknown webhook event type"):
        transaction(lambda cur: events.emit(cur, merchant.id, "payment.refunded", {}))
    with pytest.raises(psycopg2.errors.ForeignKeyViolation):
        transaction(
            lambda cur: cur.execute(
                "SELECT webhook_emit(p_owner => %s, p_type => 'payment.refunded', p_data => '{}')", (merchant.id,)
            )
        )


def test_a_failing_endpoint_is_retried_with_backoff_then_dead(merchant, receiver):
    from ledgerline.aws import clients, resources

    server = receiver(statuses=(500,))
    endpoint = _register(merchant, server.url)
    _emit(merchant)

    # First attempt through the queue: it fails, and the message waits out its backoff.
    workers.deliver_pending("merchant-webhooks")
    [delivery_id] = _delivery_ids(endpoint.id)
    [first] = _log(merchant, endpoint.id)
    assert first.status == "pending"
    assert [(a.attempt, a.outcome, a.status_code) for a in first.attempts] == [(1, "failed", 500)]
    sqs = clients.client("sqs")
    again = sqs.receive_message(QueueUrl=resources.queue_url("merchant-webhooks"), WaitTimeSeconds=1)
    assert [m for m in again.get("Messages", []) if str(delivery_id) in m["Body"]] == []

    # Later attempts (what SQS does when each backoff ends).
    steps = [delivery.attempt(delivery_id) for _ in range(delivery.MAX_ATTEMPTS - 1)]
    assert [s.delay for s in steps[:-1]] == [delivery.backoff(n) for n in range(2, delivery.MAX_ATTEMPTS)]
    assert [delivery.backoff(n) for n in (1, 2, 3)] == [30, 120, 480]
    assert steps[-1] == delivery.Next(done=False, delay=0, outcome="dead")
    [dead] = _log(merchant, endpoint.id)
    assert dead.status == "dead"
    assert [a.outcome for a in dead.attempts] == ["failed"] * (delivery.MAX_ATTEMPTS - 1) + ["dead"]
    assert all(a.error == "HTTP 500" and a.duration_ms >= 0 for a in dead.attempts)
    assert len(server.requests) == delivery.MAX_ATTEMPTS
    # A dead delivery is not tried again; its message keeps failing into the DLQ.
    from functions.webhooks import deliver

    record = {"messageId": "m-1", "receiptHandle": "none", "body": json.dumps({"delivery_id": str(delivery_id)})}
    assert deliver.handler({"Records": [record]}, None) == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert len(server.requests) == delivery.MAX_ATTEMPTS


def test_an_unreachable_endpoint_is_logged_with_its_error(merchant):
    endpoint = _register(merchant, "http://127.0.0.1:9/closed")  # the discard port: nothing listens
    _emit(merchant)
    [delivery_id] = _delivery_ids(endpoint.id)

    step = delivery.attempt(delivery_id)

    assert (step.done, step.outcome, step.delay) == (False, "failed", delivery.backoff(1))
    [attempt] = _log(merchant, endpoint.id)[0].attempts
    assert attempt.status_code is None and "ConnectionRefused" in attempt.error


def test_delivery_rechecks_the_target_in_aws(merchant, receiver, monkeypatch):
    server = receiver()
    endpoint = _register(merchant, server.url)  # allowed locally
    _emit(merchant)
    [delivery_id] = _delivery_ids(endpoint.id)
    monkeypatch.setenv("LEDGERLINE_ALLOW_PRIVATE_WEBHOOK_TARGETS", "false")
    config.settings.cache_clear()
    try:
        step = delivery.attempt(delivery_id)
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()

    assert step.outcome == "failed"
    assert server.requests == []
    [attempt] = _log(merchant, endpoint.id)[0].attempts
    assert attempt.error.startswith("refused: ") and attempt.status_code is None


def test_the_secret_is_stored_encrypted_and_never_audited(merchant, receiver):
    endpoint = _register(merchant, receiver().url)

    def read(cur):
        cur.execute("SELECT secret_ciphertext FROM webhook_endpoints WHERE id = %s", (endpoint.id,))
        sealed = bytes(cur.fetchone()["secret_ciphertext"])
        cur.execute(
            "SELECT action, payload_after::text AS after FROM audit_log WHERE resource_id = %s", (str(endpoint.id),)
        )
        return sealed, cur.fetchall()

    sealed, audits = transaction(read)
    assert endpoint.secret.startswith("whsec_") and endpoint.secret.encode() not in sealed
    assert [a["action"] for a in audits] == ["webhook_endpoint.created"]
    assert endpoint.secret not in audits[0]["after"]
    listed, _ = transaction(lambda cur: endpoints.list_endpoints(cur, merchant))
    assert "secret" not in next(e for e in listed if e.id == endpoint.id).to_json()


def test_registration_refusals(merchant, receiver):
    from ledgerline import errors

    user = Principal(id=transaction(lambda cur: create_user(cur, "user")), role="user")
    with pytest.raises(errors.Forbidden):
        _register(user, receiver().url)
    with pytest.raises(errors.ValidationFailed, match="events must be"):
        _register(merchant, receiver().url, ["payment.succeeded", "everything"])
    with pytest.raises(errors.ValidationFailed, match="url"):
        _register(merchant, "ftp://127.0.0.1/x")
    with pytest.raises(errors.ValidationFailed, match="credentials"):
        _register(merchant, "http://user:pw@127.0.0.1/x")


def test_the_application_role_cannot_rewrite_the_log(merchant, receiver, app_conn):
    endpoint = _register(merchant, receiver().url)
    _emit(merchant)
    workers.deliver_pending("merchant-webhooks")
    with app_conn.cursor() as cur:
        for sql in (
            "UPDATE webhook_delivery_attempts SET status_code = 200",
            "DELETE FROM webhook_deliveries",
            "UPDATE webhook_endpoints SET url = 'http://elsewhere.example' WHERE id = %s",
            "UPDATE webhook_events SET data = '{}'",
        ):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(sql, (endpoint.id,) if "%s" in sql else None)


def test_key_rotation_re_encrypts_secrets_and_deliveries_still_verify(merchant, receiver):
    from ledgerline.crypto.columns import ENCRYPTED_COLUMNS
    from ledgerline.crypto.rotation import rotate

    column = next(c for c in ENCRYPTED_COLUMNS if (c.table, c.column) == ("webhook_endpoints", "secret_ciphertext"))
    server = receiver()
    endpoint = _register(merchant, server.url)

    def sealed(cur):
        cur.execute("SELECT secret_ciphertext FROM webhook_endpoints WHERE id = %s", (endpoint.id,))
        return bytes(cur.fetchone()["secret_ciphertext"])

    before = transaction(sealed)
    report = rotate(columns=[column], settle_seconds=0)

    assert report.status == "completed"
    assert transaction(sealed) != before
    _emit(merchant)
    workers.deliver_pending("merchant-webhooks")
    [request] = server.requests
    signing.verify(request["headers"][signing.HEADER], request["body"], endpoint.secret)


def test_duplicate_messages_racing_on_one_delivery_log_distinct_attempts(merchant, receiver):
    server = receiver()
    endpoint = _register(merchant, server.url)
    _emit(merchant)
    [delivery_id] = _delivery_ids(endpoint.id)
    barrier = threading.Barrier(4)
    steps, failures = [], []

    def consume():
        barrier.wait()
        try:
            steps.append(delivery.attempt(delivery_id))
        except Exception as exc:  # the assertion below names it
            failures.append(exc)

    threads = [threading.Thread(target=consume) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert failures == []
    assert all(s.done for s in steps) and len(steps) == 4
    [logged] = _log(merchant, endpoint.id)
    assert logged.status == "succeeded"
    numbers = [a.attempt for a in logged.attempts]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) == len(server.requests) >= 1


def _receive_mine(sqs, url, delivery_id, tries=3):
    """Receive the queue's message for ``delivery_id`` (others are left to their timeout)."""
    for _ in range(tries):
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageSystemAttributeNames=["All"]
        )
        for message in got.get("Messages", []):
            if json.loads(message["Body"]).get("delivery_id") == str(delivery_id):
                return message
    return None


def test_a_dead_delivery_ends_in_the_dlq(merchant, receiver):
    from functions.webhooks import deliver
    from ledgerline.aws import clients, resources

    sqs = clients.client("sqs")
    url = resources.queue_url("merchant-webhooks")
    server = receiver(statuses=(503,))
    endpoint = _register(merchant, server.url)
    _emit(merchant)
    [delivery_id] = _delivery_ids(endpoint.id)

    for n in range(1, delivery.MAX_ATTEMPTS + 1):
        message = _receive_mine(sqs, url, delivery_id)
        assert message is not None, f"receive {n}"
        event = {"Records": [workers.record(message, queue_arn="arn:aws:sqs:eu-west-1:0:q", region="eu-west-1")]}
        assert deliver.handler(event, None) == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
        if n < delivery.MAX_ATTEMPTS:
            assert _receive_mine(sqs, url, delivery_id, tries=1) is None, "the backoff hides it"
            # Time passes: the backoff ends.
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)

    assert [a.outcome for a in _log(merchant, endpoint.id)[0].attempts][-1] == "dead"
    assert len(server.requests) == delivery.MAX_ATTEMPTS
    # Dead, it was handed back at once; its receives are spent, so SQS moves it to the DLQ
    # instead of delivering it again.
    assert _receive_mine(sqs, url, delivery_id, tries=1) is None
    assert _receive_mine(sqs, resources.queue_url("merchant-webhooks-dlq"), delivery_id) is not None


def test_a_server_that_drips_its_answer_is_cut_off_at_the_deadline():
    import socket
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def drip():
        conn, _ = listener.accept()
        conn.recv(65536)
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 100:
            if stop.is_set():
                break
            conn.sendall(bytes([byte]))
            time.sleep(0.2)  # each byte well within the per-read timeout
        conn.close()

    threading.Thread(target=drip, daemon=True).start()
    started = time.monotonic()
    try:
        status, error = delivery.post(
            f"http://127.0.0.1:{listener.getsockname()[1]}/", b"{}", signing.new_secret(), deadline=1.0
        )
    finally:
        stop.set()
        listener.close()

    assert status is None and "deadline" in error
    assert time.monotonic() - started < 3


def _certificate(tmp_path, name):
    """A self-signed certificate for ``name`` (its own CA): (cert file, key file)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def tls_receiver(tmp_path, receiver):
    import ssl

    server = receiver()
    cert_file, key_file = _certificate(tmp_path, "localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    return server, cert_file


def test_https_is_verified_against_the_urls_host_on_the_checked_address(tls_receiver, monkeypatch):
    server, cert_file = tls_receiver
    port = server.server.server_address[1]

    # Not trusted: refused by certificate verification, nothing delivered.
    status, error = delivery.post(f"https://localhost:{port}/hook", b"{}", signing.new_secret())
    assert status is None and "CERTIFICATE_VERIFY_FAILED" in error
    # Trusted, but named by its address: the certificate names localhost, so still refused.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    status, error = delivery.post(f"https://127.0.0.1:{port}/hook", b"{}", signing.new_secret())
    assert status is None and "CERTIFICATE_VERIFY_FAILED" in error
    assert server.requests == []
    # Trusted and named: delivered, over TLS, to the address the check resolved.
    status, error = delivery.post(f"https://localhost:{port}/hook", b"{}", signing.new_secret())
    assert (status, error) == (200, None)
    assert [r["path"] for r in server.requests] == ["/hook"]
