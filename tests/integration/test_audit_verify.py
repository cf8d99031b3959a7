"""`audit verify`: a shipped trail verifies; each kind of tampering (in the database, in
the bucket, in a checkpoint) fails it and names the record or checkpoint at fault."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from ledgerline.audit_trail import canonical, checkpoint, verify
from ledgerline.aws import audit_bucket, clients
from tests.integration import test_audit_chain as chain
from tests.integration.test_audit_chain import audit_rows, objects, record, ship_all

trail = chain.trail  # the fixture: a database and a bucket of the test's own

pytestmark = pytest.mark.timeout(180)


def shipped_trail(n: int = 12, batch_size: int = 5) -> int:
    record(n)
    ship_all(audit_rows(), batch_size=batch_size)
    return audit_rows()


def data_objects(bucket: str) -> list[str]:
    return sorted(k for k in objects(bucket) if not k.startswith(checkpoint.CHECKPOINTS))


def current(bucket: str, key: str) -> bytes:
    versions = objects(bucket)[key]
    return audit_bucket.get(key, versions[0].version_id, bucket=bucket)


def overwrite(bucket: str, key: str, data: bytes) -> None:
    audit_bucket.put(key, data, bucket=bucket)


def seq_of(line: bytes) -> int:
    return canonical.split_line(line)[0]


def test_a_shipped_trail_verifies(trail):
    n = shipped_trail()
    outcome = trail.verify()
    assert outcome.ok, outcome.difference
    assert outcome.message() == f"verified {n} records"


def test_rows_not_shipped_yet_are_reported_as_pending_not_as_a_difference(trail):
    n = shipped_trail()
    record(2)
    outcome = trail.verify()
    assert outcome.message() == f"verified {n} records"  # not chained yet: not the verifier's business


def test_editing_a_payload_in_the_database_fails_and_names_the_record(trail):
    shipped_trail()
    conn = trail.owner()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT c.seq, c.audit_id FROM audit_chain c ORDER BY c.seq OFFSET 6 LIMIT 1")
            seq, audit_id = cur.fetchone()
            # what the append-only triggers forbid to everyone: a superuser switching them off
            cur.execute("SET session_replication_role = replica")
            cur.execute(
                """UPDATE audit_log SET payload_after = '{"amount": "1000000.00", "i": 0}' WHERE id = %s""", (audit_id,)
            )
    finally:
        conn.close()
    outcome = trail.verify()
    assert not outcome.ok
    assert outcome.difference == f"record seq {seq} (audit id {audit_id}): edited in the database since it was shipped"


def test_an_edit_in_the_database_that_also_rewrites_the_chain_row_is_still_named(trail):
    """A superuser edits a row and makes the chain's own record of it match (xmin and row
    digest): the batch's digest of row digests is in its signed checkpoint."""
    shipped_trail()
    conn = trail.owner()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT c.seq, c.audit_id FROM audit_chain c ORDER BY c.seq OFFSET 3 LIMIT 1")
            seq, audit_id = cur.fetchone()
            cur.execute("SET session_replication_role = replica")
            cur.execute("""UPDATE audit_log SET user_agent = 'forged' WHERE id = %s""", (audit_id,))
            cur.execute(
                """UPDATE audit_chain c SET row_xmin = a.xmin,
                          row_digest = audit_chain_row_digest(
                            p_id => a.id, p_occurred_at => a.occurred_at, p_category => a.category,
                            p_action => a.action, p_actor_id => a.actor_id, p_actor_type => a.actor_type,
                            p_actor_ip => a.actor_ip, p_user_agent => a.user_agent,
                            p_resource_type => a.resource_type, p_resource_id => a.resource_id,
                            p_payload_before => a.payload_before, p_payload_after => a.payload_after,
                            p_metadata => a.metadata)
                     FROM audit_log a WHERE a.id = c.audit_id AND c.seq = %s""",
                (seq,),
            )
    finally:
        conn.close()
    outcome = trail.verify()
    assert outcome.difference == f"record seq {seq} (audit id {audit_id}): edited in the database since it was shipped"


def test_deleting_an_object_version_fails_and_names_the_object_and_its_records(trail):
    shipped_trail()
    key = data_objects(trail.bucket)[1]
    version = objects(trail.bucket)[key][0].version_id
    s3 = clients.client("s3")
    # COMPLIANCE forbids this to everyone (test_audit_chain); moto lets a retention be
    # rewritten, which real S3 refuses: here it stands for storage lost or an insider.
    s3.put_object_retention(
        Bucket=trail.bucket,
        Key=key,
        VersionId=version,
        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": "2000-01-01T00:00:00Z"},
        BypassGovernanceRetention=True,
    )
    s3.delete_object(Bucket=trail.bucket, Key=key, VersionId=version, BypassGovernanceRetention=True)
    assert key not in objects(trail.bucket)
    outcome = trail.verify()
    assert not outcome.ok
    assert outcome.difference.startswith(f"object {key} (records in seq 6-10, checkpoint ")
    assert "is missing: its version was deleted" in outcome.difference


def test_overwriting_an_object_fails_and_names_the_record_that_changed(trail):
    shipped_trail()
    key = data_objects(trail.bucket)[0]
    lines = current(trail.bucket, key).split(b"\n")
    row = json.loads(lines[2])
    row["payload_after"] = row["payload_after"].replace("1.00", "9.00")
    lines[2] = json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode()
    overwrite(trail.bucket, key, b"\n".join(lines))
    outcome = trail.verify()
    assert not outcome.ok
    assert f"record seq 3 (audit id {row['id']}) was edited" in outcome.difference
    assert outcome.difference.startswith(f"object {key} version ")


def test_reordering_two_records_fails_and_names_the_record_out_of_place(trail):
    shipped_trail()
    key = data_objects(trail.bucket)[0]
    lines = current(trail.bucket, key).split(b"\n")
    lines[1], lines[2] = lines[2], lines[1]
    overwrite(trail.bucket, key, b"\n".join(lines))
    outcome = trail.verify()
    assert not outcome.ok
    assert f"record seq {seq_of(lines[2])}" in outcome.difference
    assert f"is out of order, after seq {seq_of(lines[1])} (reordered)" in outcome.difference


def test_inserting_a_forged_record_fails_and_names_it(trail):
    n = shipped_trail()
    key = data_objects(trail.bucket)[0]
    last = current(trail.bucket, key).split(b"\n")[0]
    rec = canonical.split_line(last)[4]
    forged_record = rec.replace(b'"transfer.created"', b'"transfer.reversed"')
    forged_content = canonical.content_hash(forged_record)
    forged_seq = n + 1
    forged_chain = canonical.chain_hash(forged_seq, canonical.GENESIS, forged_content)
    line = canonical.line(forged_seq, canonical.GENESIS, forged_chain, forged_content, forged_record)
    forged_key = checkpoint.object_key(key.split("dt=")[1][:10], 1, 1)  # a name like the shipper's
    overwrite(trail.bucket, forged_key, line + b"\n")
    outcome = trail.verify()
    assert not outcome.ok
    assert outcome.difference == f"record seq {forged_seq} in object {forged_key}: in no checkpoint (inserted)"


def test_inserting_a_forged_line_into_an_object_fails_and_names_it(trail):
    shipped_trail()
    key = data_objects(trail.bucket)[0]
    lines = current(trail.bucket, key).split(b"\n")
    lines.insert(1, lines[3])  # a copy of a genuine record: every hash in it is right
    overwrite(trail.bucket, key, b"\n".join(lines))
    outcome = trail.verify()
    assert not outcome.ok
    assert f"record seq {seq_of(lines[1])}" in outcome.difference
    assert "appears twice (inserted)" in outcome.difference


def test_a_checkpoint_re_signed_with_another_key_fails_and_names_the_checkpoint(trail):
    shipped_trail()
    key = sorted(k for k in objects(trail.bucket) if k.startswith(checkpoint.CHECKPOINTS))[1]
    document = json.loads(current(trail.bucket, key))
    kms = clients.client("kms")
    other = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    body = canonical.canonical_json(canonical.loads(json.dumps(document["checkpoint"])))
    document["signature"] = base64.b64encode(
        kms.sign(KeyId=other, Message=body.encode(), MessageType="RAW", SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")[
            "Signature"
        ]
    ).decode()
    document["key_id"] = other
    overwrite(trail.bucket, key, json.dumps(document).encode())
    outcome = trail.verify()
    assert not outcome.ok
    assert outcome.difference.startswith(f"checkpoint {key}: ")


def test_a_checkpoint_of_a_rewritten_chain_signed_with_another_key_fails(trail):
    """The forger rewrites a whole batch consistently (objects, hashes, head) and signs a
    new checkpoint for it with a key of their own: only the signature can tell."""
    shipped_trail(n=6, batch_size=100)
    key = data_objects(trail.bucket)[0]
    cp_key = next(k for k in objects(trail.bucket) if k.startswith(checkpoint.CHECKPOINTS))
    lines = [raw for raw in current(trail.bucket, key).split(b"\n") if raw]
    prev = canonical.GENESIS
    rewritten = []
    for raw in lines:
        seq, _p, _c, _h, rec = canonical.split_line(raw)
        rec = rec.replace(b'"1.00', b'"2.00')
        content = canonical.content_hash(rec)
        chain = canonical.chain_hash(seq, prev, content)
        rewritten.append(canonical.line(seq, prev, chain, content, rec))
        prev = chain
    data = b"\n".join(rewritten) + b"\n"
    import hashlib

    signed = json.loads(current(trail.bucket, cp_key))["checkpoint"]
    body = checkpoint.body(1, len(lines), canonical.GENESIS, prev, signed["rows_digest"], [
        {"key": key, "sha256": hashlib.sha256(data).hexdigest(), "records": len(lines)}
    ])  # fmt: skip
    kms = clients.client("kms")
    other = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    signature = kms.sign(
        KeyId=other,
        Message=canonical.canonical_json(body).encode(),
        MessageType="RAW",
        SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256",
    )["Signature"]
    document = {"checkpoint": body, "algorithm": "RSASSA_PKCS1_V1_5_SHA_256", "key_id": other,
                "signature": base64.b64encode(signature).decode()}  # fmt: skip
    overwrite(trail.bucket, key, data)
    overwrite(trail.bucket, cp_key, json.dumps(document).encode())
    outcome = trail.verify()
    assert not outcome.ok
    assert outcome.difference.startswith(f"checkpoint {cp_key}: ")


def test_a_delete_marker_hiding_an_object_fails(trail):
    shipped_trail()
    key = data_objects(trail.bucket)[0]
    clients.client("s3").delete_object(Bucket=trail.bucket, Key=key)  # allowed under Object Lock: a marker
    outcome = trail.verify()
    assert outcome.difference == f"object {key}: a delete marker hides it from queries"


def test_the_cli_prints_verified_or_the_first_difference_and_exits_accordingly(trail):
    import os

    n = shipped_trail(n=3)
    env = {**os.environ}
    run = [sys.executable, "-m", "ledgerline.cli", "audit", "verify"]
    ok = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert (ok.returncode, ok.stdout.strip()) == (0, f"verified {n} records"), ok.stderr
    conn = trail.owner()
    try:
        with conn.cursor() as cur:  # what retention may now detach up to (audit_log_retire)
            cur.execute(
                "SELECT through_seq, encode(chain_head, 'hex') FROM audit_log_verified ORDER BY id DESC LIMIT 1"
            )
            through, head = cur.fetchone()
            cur.execute("SELECT encode(chain_hash, 'hex') FROM audit_chain WHERE seq = %s", (n,))
            assert (through, head) == (n, cur.fetchone()[0])
    finally:
        conn.close()
    key = data_objects(trail.bucket)[0]
    overwrite(trail.bucket, key, current(trail.bucket, key).replace(b"pytest", b"forged"))
    bad = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 1
    assert bad.stdout.startswith("audit verify failed: object ")


def test_the_progress_bar_draws_only_on_a_terminal():
    import io

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty, pipe = Tty(), io.StringIO()
    verify.Progress(tty)(3, 3, "checkpoints")
    verify.Progress(pipe)(3, 3, "checkpoints")
    assert "3/3 checkpoints" in tty.getvalue()
    assert pipe.getvalue() == ""


def test_a_forged_object_named_after_the_last_checkpoint_is_still_an_insertion(trail):
    n = shipped_trail()
    key = data_objects(trail.bucket)[0]
    genuine = current(trail.bucket, key).split(b"\n")[0]
    forged_key = checkpoint.object_key(key.split("dt=")[1][:10], n + 1, n + 1)  # no batch has this range
    overwrite(trail.bucket, forged_key, genuine + b"\n")
    outcome = trail.verify()
    assert outcome.difference == f"record seq 1 in object {forged_key}: in no checkpoint (inserted)"


def test_a_batch_put_but_not_yet_checkpointed_is_in_flight_not_a_difference(trail, monkeypatch):
    from ledgerline.audit_trail import shipper

    n = shipped_trail()
    record(3)

    class Crash(Exception):
        pass

    def crash(_body):
        raise Crash

    monkeypatch.setattr(shipper.checkpoint, "signed", crash)  # objects put, then the crash
    with pytest.raises(Crash):
        shipper.ship()
    monkeypatch.undo()
    assert len(data_objects(trail.bucket)) > 3
    outcome = trail.verify()
    assert outcome.ok, outcome.difference
    assert outcome.message() == f"verified {n} records (3 chained, not shipped yet)"
    ship_all(audit_rows())
    assert trail.verify().message() == f"verified {n + 3} records"
