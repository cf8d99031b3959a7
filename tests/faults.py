"""Faults injected into the database itself, for tests of a money statement that stops
midway: a posting whose transaction row names ``marker`` sleeps, then crashes (the first
time only: a sequence's nextval is not rolled back with the crash), as a Lambda timing out
or a connection dying mid-transaction would."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def posting_fault(owner_conn: Any, marker: str, *, sleep: float = 0.0, crash: bool = True) -> Iterator[None]:
    """While active, a transaction described ``marker`` waits ``sleep`` seconds, then (if
    ``crash``) fails with an unexpected error, once."""
    name = f"test_fault_{uuid.uuid4().hex[:8]}"
    with owner_conn.cursor() as cur:
        cur.execute(f"CREATE SEQUENCE {name}_seq")
        cur.execute(
            f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
            BEGIN
              IF NEW.description = %(marker)s THEN
                PERFORM pg_sleep(%(sleep)s);
                IF %(crash)s AND nextval('{name}_seq') = 1 THEN
                  RAISE EXCEPTION 'simulated crash mid-posting: secret internals';
                END IF;
              END IF;
              RETURN NEW;
            END $$
            """,
            {"marker": marker, "sleep": sleep, "crash": crash},
        )
        cur.execute(f"CREATE TRIGGER {name} BEFORE INSERT ON transactions FOR EACH ROW EXECUTE FUNCTION {name}()")
    try:
        yield
    finally:
        with owner_conn.cursor() as cur:
            cur.execute(f"DROP TRIGGER {name} ON transactions")
            cur.execute(f"DROP FUNCTION {name}()")
            cur.execute(f"DROP SEQUENCE {name}_seq")
