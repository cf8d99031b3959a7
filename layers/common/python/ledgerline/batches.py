"""Scheduled jobs that work through a backlog one batch (one transaction) at a time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ledgerline.db import Cursor, transaction
from ledgerline.db.tx import MAX_ATTEMPTS

SAFETY_MARGIN_SECONDS = 10.0  # stop starting batches well before the Lambda timeout


def drain(
    step: Callable[[Cursor], int],
    batch_size: int,
    context: Any = None,
    *,
    time_budget: float | None = None,
    attempts: int = MAX_ATTEMPTS,
    connection: Callable[[], Any] | None = None,
) -> int:
    """Run ``step`` (which handles up to ``batch_size`` rows and returns how many) in its
    own transaction until a short batch or the time runs out; return the total. A long
    backlog never holds many locks for long.

    The time is the invocation's (``context``) less a safety margin, or ``time_budget``.
    ``attempts=1`` for a step that acts outside the database (it must not run twice).
    """
    if time_budget is None:
        remaining = context.get_remaining_time_in_millis() / 1000 if context else 60.0
        time_budget = remaining - SAFETY_MARGIN_SECONDS
    deadline = time.monotonic() + max(1.0, time_budget)
    options: dict[str, Any] = {"attempts": attempts}
    if connection is not None:
        options["connection"] = connection
    total = 0
    while True:
        n = transaction(step, **options)
        total += n
        if n < batch_size or time.monotonic() >= deadline:
            return total
