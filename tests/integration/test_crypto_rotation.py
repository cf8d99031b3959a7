"""Key rotation on a real table: batches, resume, readers during it, stragglers, audit."""

from __future__ import annotations

import secrets
import time
import uuid

import pytest

from ledgerline.crypto import decrypt_field, encrypt_field, fields
from ledgerline.crypto.columns import EncryptedColumn
from ledgerline.crypto.fields import FieldCipher, key_created_ms
from ledgerline.crypto.keys import KmsKeyProvider
from ledgerline.crypto.rotation import RotationError, main, rotate, status
from ledgerline.db import transaction

ROWS = 23


@pytest.fixture
def accounts(owner_conn, crypto_env):
    """A table made by the test (as the owner) with two encrypted columns, one optional."""
    name = f"crypto_test_accounts_{secrets.token_hex(3)}"
    with owner_conn.cursor() as cur:
        cur.execute("SET ROLE ledgerline_owner")
        cur.execute(
            f"""
            CREATE TABLE {name} (
              id                 uuid PRIMARY KEY,
              number_ciphertext  bytea NOT NULL,
              note_ciphertext    bytea,
              note_encrypted     boolean NOT NULL DEFAULT true
            )
            """
        )
        cur.execute("RESET ROLE")
    yield name
    with owner_conn.cursor() as cur:
        cur.execute(f"DROP TABLE {name}")


def columns(table: str) -> list[EncryptedColumn]:
    return [
        EncryptedColumn(table, "number_ciphertext"),
        # Rows whose flag says the note is not an envelope are left alone.
        EncryptedColumn(table, "note_ciphertext", where="note_encrypted"),
    ]


def fill(table: str, n: int = ROWS, cipher: FieldCipher | None = None) -> dict[uuid.UUID, tuple[str, str | None]]:
    fc = cipher or fields.cipher()
    expected: dict[uuid.UUID, tuple[str, str | None]] = {}

    def work(cur):
        for i in range(n):
            row_id = uuid.uuid4()
            number = f"{i:010d}"
            note = None if i % 5 == 0 else f"note {i}"
            cur.execute(
                f"INSERT INTO {table} (id, number_ciphertext, note_ciphertext) VALUES (%s, %s, %s)",
                (
                    row_id,
                    fc.encrypt(number, table=table, column="number_ciphertext", row_id=row_id),
                    None if note is None else fc.encrypt(note, table=table, column="note_ciphertext", row_id=row_id),
                ),
            )
            expected[row_id] = (number, note)

    transaction(work)
    return expected


def stored(table: str) -> dict[uuid.UUID, dict]:
    def work(cur):
        cur.execute(f"SELECT id, number_ciphertext, note_ciphertext, note_encrypted FROM {table}")
        return {
            r["id"]: {k: bytes(v) if isinstance(v, memoryview) else v for k, v in r.items()} for r in cur.fetchall()
        }

    return transaction(work)


def read_all(table: str) -> dict[uuid.UUID, tuple[str, str | None]]:
    out = {}
    for row_id, row in stored(table).items():
        number = decrypt_field(row["number_ciphertext"], table=table, column="number_ciphertext", row_id=row_id)
        note = row["note_ciphertext"]
        if note is not None and row["note_encrypted"]:
            note = decrypt_field(note, table=table, column="note_ciphertext", row_id=row_id)
        out[row_id] = (number, note)
    return out


def test_rotation_re_encrypts_every_row_and_leaves_it_readable(accounts):
    expected = fill(accounts)
    before = stored(accounts)

    report = rotate(batch_size=7, columns=columns(accounts), settle_seconds=0)

    assert report.status == "completed" and not report.resumed
    after = stored(accounts)
    notes = sum(1 for _n, note in expected.values() if note is not None)
    assert report.rows_reencrypted == ROWS + notes
    for row_id, row in after.items():
        assert row["number_ciphertext"] != before[row_id]["number_ciphertext"]
        assert key_created_ms(row["number_ciphertext"]) > report.cutoff_ms
        if row["note_ciphertext"] is not None:
            assert key_created_ms(row["note_ciphertext"]) > report.cutoff_ms
    assert read_all(accounts) == expected
    assert {name: p.done for name, p in report.columns.items()} == {
        f"{accounts}.number_ciphertext": True,
        f"{accounts}.note_ciphertext": True,
    }


def test_rotation_is_audited_as_a_configuration_change(accounts, owner_conn):
    fill(accounts, 3)
    report = rotate(columns=columns(accounts), settle_seconds=0)
    with owner_conn.cursor() as cur:
        cur.execute(
            """
            SELECT action, category, actor_type, payload_after FROM audit_log
             WHERE resource_type = 'key_generation' AND resource_id = %s ORDER BY occurred_at
            """,
            (str(report.generation),),
        )
        rows = cur.fetchall()
    assert [(a, c, t) for a, c, t, _ in rows] == [
        ("keys.rotation_started", "admin", "system"),
        ("keys.rotated", "admin", "system"),
    ]
    assert rows[1][3]["rows_reencrypted"] == report.rows_reencrypted == 3 + 2


def test_an_interrupted_rotation_resumes_where_it_stopped(accounts, owner_conn):
    expected = fill(accounts)
    cols = columns(accounts)

    first = rotate(batch_size=5, columns=cols, max_batches=2, settle_seconds=0)
    assert first.status == "running"
    assert first.rows_reencrypted == 10
    with owner_conn.cursor() as cur:
        cur.execute(
            "SELECT last_id, done FROM crypto_rotation_progress WHERE generation = %s AND column_name = %s",
            (first.generation, "number_ciphertext"),
        )
        last_id, done = cur.fetchone()
    assert last_id is not None and not done

    # Mid-rotation, every row reads: some under the old generation, some under the new.
    stamps = [key_created_ms(r["number_ciphertext"]) > first.cutoff_ms for r in stored(accounts).values()]
    assert 0 < sum(stamps) < ROWS
    assert read_all(accounts) == expected

    # A new process picks it up (its own cipher, nothing cached).
    fields.reset()
    second = rotate(batch_size=5, columns=cols, settle_seconds=0)
    assert second.status == "completed" and second.resumed
    assert second.generation == first.generation
    notes = sum(1 for _n, note in expected.values() if note is not None)
    assert second.rows_reencrypted == ROWS + notes  # nothing done twice
    assert read_all(accounts) == expected
    assert status()["status"] == "completed"


def test_a_row_that_does_not_decrypt_stops_the_rotation_by_name_and_it_resumes_after_repair(accounts, owner_conn):
    expected = fill(accounts, 12)
    victim = sorted(expected)[8]
    with owner_conn.cursor() as cur:
        cur.execute(
            f"""
            UPDATE {accounts} SET number_ciphertext = set_byte(number_ciphertext, length(number_ciphertext) - 1,
                   get_byte(number_ciphertext, length(number_ciphertext) - 1) # 1) WHERE id = %s
            """,
            (victim,),
        )
    cols = columns(accounts)
    with pytest.raises(RotationError, match=f"{accounts}.number_ciphertext row {victim} cannot be decrypted"):
        rotate(batch_size=4, columns=cols, settle_seconds=0)
    progress = status()
    assert progress["status"] == "running"
    assert progress["columns"][f"{accounts}.number_ciphertext"]["rows_reencrypted"] == 8  # two batches kept

    # The operator restores the value (here: re-enters it), then runs the command again.
    repaired = encrypt_field(expected[victim][0], table=accounts, column="number_ciphertext", row_id=victim)
    with owner_conn.cursor() as cur:
        cur.execute(f"UPDATE {accounts} SET number_ciphertext = %s WHERE id = %s", (repaired, victim))
    report = rotate(batch_size=4, columns=cols, settle_seconds=0)
    assert report.status == "completed" and report.resumed
    assert read_all(accounts) == expected


def test_values_written_with_an_old_data_key_during_the_rotation_are_swept(accounts):
    expected = fill(accounts, 6)
    # Another process that made its data key before the rotation starts, and keeps using it.
    lagging = FieldCipher(KmsKeyProvider())
    lagging.encrypt("warm-up", table=accounts, column="number_ciphertext", row_id="warm-up")

    first = rotate(columns=columns(accounts), settle_seconds=1.0, wait=False)
    assert first.status == "settling"
    late = fill(accounts, 2, cipher=lagging)
    for row_id in late:
        assert key_created_ms(stored(accounts)[row_id]["number_ciphertext"]) < first.cutoff_ms
    time.sleep(1.1)

    report = rotate(columns=columns(accounts), settle_seconds=1.0)
    assert report.status == "completed" and report.generation == first.generation
    for row in stored(accounts).values():
        assert key_created_ms(row["number_ciphertext"]) > report.cutoff_ms
    assert read_all(accounts) == {**expected, **late}


def test_rows_marked_as_not_envelopes_are_left_alone(accounts, owner_conn):
    fill(accounts, 2)
    legacy = uuid.uuid4()
    number = fields.cipher().encrypt("5555555555", table=accounts, column="number_ciphertext", row_id=legacy)
    with owner_conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO {accounts} VALUES (%s, %s, %s, false)",
            (legacy, number, b"raw legacy bytes, not an envelope"),
        )
    report = rotate(columns=columns(accounts), settle_seconds=0)
    assert report.status == "completed"
    assert stored(accounts)[legacy]["note_ciphertext"] == b"raw legacy bytes, not an envelope"


def test_an_unknown_column_is_refused_before_anything_changes(accounts):
    fill(accounts, 2)
    before = stored(accounts)
    with pytest.raises(RotationError, match="no such bytea column"):
        rotate(columns=[*columns(accounts), EncryptedColumn(accounts, "missing_ciphertext")], settle_seconds=0)
    assert stored(accounts) == before


def test_the_cli_rotates_the_registered_columns(accounts, monkeypatch, capsys):
    expected = fill(accounts, 4)
    monkeypatch.setattr("ledgerline.crypto.rotation.ENCRYPTED_COLUMNS", columns(accounts))
    monkeypatch.setattr("ledgerline.crypto.rotation.DEFAULT_POLICY", fields.CachePolicy(max_age_seconds=0.5))
    monkeypatch.setattr("ledgerline.crypto.rotation.SETTLE_MARGIN_SECONDS", 0.0)
    assert main(["rotate", "--batch-size", "3"]) == 0
    assert '"status": "completed"' in capsys.readouterr().out
    assert read_all(accounts) == expected
    assert main(["status"]) == 0
    assert '"completed"' in capsys.readouterr().out
