"""Scheduled jobs that work through a backlog one batch (one transaction) at a time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ledgerline.db import Cursor, transaction

SAFETY_MARGIN_SECONDS = 10.0  # stop starting batches well before the Lambda timeout


def drain(step: Callable[[Cursor], int], batch_size: int, context: Any) -> int:
    """Run ``step`` (which handles up to ``batch_size`` rows and returns how many) in its
    own transaction until a short batch or the invocation's time runs out; return the
    total. A long backlog never holds many locks for long."""
    remaining = context.get_remaining_time_in_millis() / 1000 if context else 60.0
    deadline = time.monotonic() + max(1.0, remaining - SAFETY_MARGIN_SECONDS)
    total = 0
    while True:
        n = transaction(step)
        total += n
        if n < batch_size or time.monotonic() >= deadline:
            return total
