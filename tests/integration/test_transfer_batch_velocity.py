"""Velocity counts a batch's items (issue 19): a check's ``weight`` in ``rate_limit_hit``,
on the real PostgreSQL. A request weighing n passes only if n more fit in the sliding
window; a refused one counts nothing; one heavier than the limit never passes."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from ledgerline.auth import ratelimits
from ledgerline.config import Limit
from ledgerline.db import transaction

pytestmark = pytest.mark.usefixtures("database_url")


def hit(check: ratelimits.Check, weight: int) -> list[ratelimits.Refusal]:
    weighed = dataclasses.replace(check, weight=weight)
    return transaction(lambda cur: ratelimits.hit(cur, [weighed]))


def bucket(owner_conn, check: ratelimits.Check) -> tuple[int, int]:
    with owner_conn.cursor() as cur:
        cur.execute("SELECT hits, refused FROM rate_limit_buckets WHERE key = %s", (check.key,))
        return cur.fetchone()


def test_a_weighed_request_passes_only_while_its_items_fit(owner_conn):
    check = ratelimits.Check(f"velocity:test:{uuid.uuid4()}", Limit(20, 60), "velocity")

    first, second = hit(check, 15), hit(check, 6)
    assert first == [] and bucket(owner_conn, check) == (15, 1)
    [refusal] = second
    # 15 of 20 used: 6 more wait until the window ends and enough of its 15 have faded
    # (60 s, then 60 * (1 - 14/15) = 4 s), and the refusal counted nothing.
    assert 63 <= refusal.retry_after <= 65
    assert hit(check, 5) == [] and bucket(owner_conn, check)[0] == 20
    assert hit(check, 1) != []


def test_a_first_request_heavier_than_the_limit_never_passes_and_counts_nothing(owner_conn):
    check = ratelimits.Check(f"velocity:test:{uuid.uuid4()}", Limit(20, 60), "velocity")

    [refusal] = hit(check, 21)

    assert refusal.retry_after == 60 and bucket(owner_conn, check) == (0, 1)
    assert hit(check, 20) == []


def test_a_later_request_heavier_than_the_limit_is_told_a_period(owner_conn):
    check = ratelimits.Check(f"velocity:test:{uuid.uuid4()}", Limit(20, 60), "velocity")
    assert hit(check, 1) == []

    [refusal] = hit(check, 50)

    assert refusal.retry_after == 60 and bucket(owner_conn, check)[0] == 1


def test_each_request_weighs_one_unless_told(owner_conn):
    check = ratelimits.Check(f"velocity:test:{uuid.uuid4()}", Limit(3, 60), "velocity")

    results = [transaction(lambda cur: ratelimits.hit(cur, [check])) for _ in range(4)]

    assert [len(r) for r in results] == [0, 0, 0, 1] and bucket(owner_conn, check)[0] == 3
