"""Sensitive columns in a real table: ciphertext and blind index only, bound to their row."""

from __future__ import annotations

import secrets
import uuid

import pytest

from ledgerline.crypto import DecryptionError, blind_index, decrypt_field, encrypt_field, mask
from ledgerline.db import transaction

PEOPLE = [
    ("Ada Obi", "+234 803 123 4567", "0123456789"),
    ("Bayo Ade", "+234 805 987 6543", "9876543210"),
    ("Chi Eze", "+44 7700 900123", "GB29 NWBK 6016 1331 9268 19"),
]


@pytest.fixture
def people_table(owner_conn, crypto_env):
    """A table made by the test itself, as the owner (the app role gets the usual rights)."""
    name = f"crypto_test_people_{secrets.token_hex(3)}"
    with owner_conn.cursor() as cur:
        cur.execute("SET ROLE ledgerline_owner")
        cur.execute(
            f"""
            CREATE TABLE {name} (
              id                  uuid PRIMARY KEY,
              full_name           text NOT NULL,
              phone_ciphertext    bytea NOT NULL,
              phone_blind_index   bytea NOT NULL,
              phone_last4         text NOT NULL,
              account_ciphertext  bytea NOT NULL,
              account_blind_index bytea NOT NULL
            )
            """
        )
        cur.execute(f"CREATE INDEX ON {name} (phone_blind_index)")
        cur.execute("RESET ROLE")
    yield name
    with owner_conn.cursor() as cur:
        cur.execute(f"DROP TABLE {name}")


def add_person(table: str, full_name: str, phone: str, account: str) -> uuid.UUID:
    person_id = uuid.uuid4()

    def work(cur):
        cur.execute(
            f"""
            INSERT INTO {table} (id, full_name, phone_ciphertext, phone_blind_index, phone_last4,
                                 account_ciphertext, account_blind_index)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            """,
            (
                person_id,
                full_name,
                encrypt_field(phone, table=table, column="phone_ciphertext", row_id=person_id),
                blind_index(phone, kind="phone"),
                mask(phone).removeprefix("****"),
                encrypt_field(account, table=table, column="account_ciphertext", row_id=person_id),
                blind_index(account, kind="bank_account"),
            ),
        )

    transaction(work)
    return person_id


def find_by_phone(table: str, phone: str) -> list[dict]:
    def work(cur):
        cur.execute(
            f"SELECT id, full_name, phone_ciphertext, account_ciphertext FROM {table} WHERE phone_blind_index = %s",
            (blind_index(phone, kind="phone"),),
        )
        return cur.fetchall()

    return transaction(work)


def test_a_raw_select_of_the_sensitive_columns_shows_no_plaintext(people_table, owner_conn):
    for person in PEOPLE:
        add_person(people_table, *person)
    with owner_conn.cursor() as cur:
        cur.execute(f"SELECT row_to_json(p)::text, p.* FROM {people_table} p")
        dump = cur.fetchall()
    assert len(dump) == len(PEOPLE)
    text = "\n".join(str(row) for row in dump)
    for _name, phone, account in PEOPLE:
        for plain in (phone, phone.replace(" ", ""), phone.replace(" ", "")[4:], account, account.replace(" ", "")):
            assert plain not in text, f"{plain!r} is readable in the table"
            assert plain.encode().hex() not in text
    for row in dump:
        for column in (3, 4, 6, 7):  # ciphertexts and blind indexes (after the JSON, id, name)
            raw = bytes(row[column])
            assert not any(p.encode() in raw for person in PEOPLE for p in person[1:])


def test_the_blind_index_finds_the_row_whatever_the_spelling(people_table):
    ids = [add_person(people_table, *person) for person in PEOPLE]
    found = find_by_phone(people_table, "002348031234567")
    assert [r["id"] for r in found] == [ids[0]]
    row = found[0]
    assert decrypt_field(row["phone_ciphertext"], table=people_table, column="phone_ciphertext", row_id=row["id"]) == (
        "+234 803 123 4567"
    )
    assert find_by_phone(people_table, "+234 803 000 0000") == []


def test_a_ciphertext_copied_to_another_row_does_not_decrypt(people_table, owner_conn):
    a = add_person(people_table, *PEOPLE[0])
    b = add_person(people_table, *PEOPLE[1])
    with owner_conn.cursor() as cur:
        # Someone with write access swaps two customers' bank accounts.
        cur.execute(
            f"""
            UPDATE {people_table} p SET account_ciphertext = q.account_ciphertext
              FROM {people_table} q WHERE p.id = %s AND q.id = %s
            """,
            (a, b),
        )
        cur.execute(f"SELECT account_ciphertext FROM {people_table} WHERE id = %s", (a,))
        swapped = cur.fetchone()[0]
    with pytest.raises(DecryptionError, match=f"{people_table}.account_ciphertext of row {a}"):
        decrypt_field(swapped, table=people_table, column="account_ciphertext", row_id=a)


def test_a_ciphertext_copied_to_another_column_does_not_decrypt(people_table, owner_conn):
    a = add_person(people_table, *PEOPLE[0])
    with owner_conn.cursor() as cur:
        cur.execute(f"UPDATE {people_table} SET account_ciphertext = phone_ciphertext WHERE id = %s", (a,))
        cur.execute(f"SELECT account_ciphertext FROM {people_table} WHERE id = %s", (a,))
        moved = cur.fetchone()[0]
    with pytest.raises(DecryptionError):
        decrypt_field(moved, table=people_table, column="account_ciphertext", row_id=a)


def test_a_tampered_stored_value_does_not_decrypt(people_table, owner_conn):
    a = add_person(people_table, *PEOPLE[0])
    with owner_conn.cursor() as cur:
        cur.execute(
            f"""
            UPDATE {people_table}
               SET phone_ciphertext = set_byte(phone_ciphertext, length(phone_ciphertext) - 1,
                                               get_byte(phone_ciphertext, length(phone_ciphertext) - 1) # 1)
             WHERE id = %s RETURNING phone_ciphertext
            """,
            (a,),
        )
        tampered = cur.fetchone()[0]
    with pytest.raises(DecryptionError, match="altered"):
        decrypt_field(tampered, table=people_table, column="phone_ciphertext", row_id=a)
