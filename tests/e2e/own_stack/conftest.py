"""The tests of this folder start `ledgerline dev up` in a process of their own
(``stack.LocalStack``): its own PostgreSQL, AWS stand-in, workers, scheduler and fake
gateway. Those that only need *a* running stack share one (``shared_stack``, for this
folder only: it is stopped after the folder's last test, so it never idles under the rest
of the suite); those that test starting, stopping or restarting start their own.

Their application connections never go through the PgBouncer tier's pooler (the stack
connects to its own PostgreSQL), so ``make test-pgbouncer`` leaves this folder out.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.own_stack.stack import LocalStack


@pytest.fixture(scope="package")
def shared_stack() -> Iterator[LocalStack]:
    with LocalStack("shared-stack") as stack:
        yield stack
