"""Audit rows are written with the change and can never be edited (invariant 1)."""

import psycopg2
import pytest

from ledgerline import audit
from ledgerline.db import transaction


def _record(**kw):
    actor = audit.Actor(id=None, type="system", ip="127.0.0.1", user_agent="pytest", request_id="req-1")
    return transaction(lambda cur: audit.record(cur, actor, "admin.config.changed", "setting", "x", **kw))


def test_record_writes_actor_action_payloads_and_a_content_hash(app_conn):
    audit_id = _record(before={"limit": "5"}, after={"limit": "10"})

    with app_conn.cursor() as cur:
        cur.execute(
            "SELECT category, action, actor_type, host(actor_ip), user_agent, payload_before, payload_after,"
            " metadata, length(content_hash) FROM audit_log WHERE id = %s",
            (audit_id,),
        )
        row = cur.fetchone()
    assert row == ("admin", "admin.config.changed", "system", "127.0.0.1", "pytest",
                   {"limit": "5"}, {"limit": "10"}, {"request_id": "req-1"}, 32)  # fmt: skip


def test_audit_row_rolls_back_with_its_transaction(app_conn):
    class Boom(Exception):
        pass

    def work(cur):
        audit.record(cur, audit.Actor.system(), "admin.config.changed", "setting", "rollback-me")
        raise Boom

    with pytest.raises(Boom):
        transaction(work)

    with app_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM audit_log WHERE resource_id = 'rollback-me'")
        assert cur.fetchone()[0] == 0


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET action = 'admin.tampered.row'", "DELETE FROM audit_log", "TRUNCATE audit_log"],
)
def test_the_app_role_cannot_update_delete_or_truncate_audit_rows(app_conn, statement):
    _record()

    with app_conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
        cur.execute(statement)


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET action = 'admin.tampered.row'", "DELETE FROM audit_log"])
def test_not_even_the_owner_can_edit_audit_rows(owner_conn, statement):
    _record()

    with owner_conn.cursor() as cur:
        cur.execute("SET ROLE ledgerline_owner")
        with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="append-only"):
            cur.execute(statement)


def test_an_unknown_action_namespace_is_refused_before_writing():
    with pytest.raises(ValueError, match="unknown namespace"):
        audit.category_of("bogus.thing")
