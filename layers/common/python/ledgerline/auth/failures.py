"""Failed authentication, counted per IP: guessing tokens or API keys is rate-limited.

Every refused credential (a forged or expired token, a revoked session, a made-up API
key) counts against the caller's IP under the ``auth`` limit of
``settings().rate_limits`` (``auth=20/minute`` by default), in the shared store of every
other limit. Past the limit the answer is 429, and this process remembers the IP until
the window ends, so further attempts are refused before any signature is checked or any
database is asked. Other processes learn it from their own first failure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from ledgerline import audit, errors
from ledgerline.audit import Actor
from ledgerline.auth import events
from ledgerline.config import settings

if TYPE_CHECKING:
    from ledgerline.db import Cursor

LIMIT_NAME = "auth"
T = TypeVar("T")

_blocked: dict[str, float] = {}  # ip → monotonic time its block ends
_lock = threading.Lock()


def counted(
    ip: str | None, check: Callable[[], T], *, refusals: tuple[type[errors.DomainError], ...] = (errors.Unauthorized,)
) -> T:
    """Run ``check`` (a credential check) for ``ip``: refused at once when the IP is over
    its budget, and a refusal of one of ``refusals`` counted against it."""
    refuse_if_blocked(ip)
    try:
        return check()
    except refusals as refused:
        raise count(ip, refused) from None


def refuse_if_blocked(ip: str | None) -> None:
    """429 for an IP this process saw go over its budget, without any other work."""
    if ip is None:
        return
    with _lock:
        until = _blocked.get(ip)
        if until is not None and until <= time.monotonic():
            del _blocked[ip]
            until = None
    if until is not None:
        raise _too_many(until - time.monotonic())


def count(ip: str | None, refused: errors.DomainError) -> errors.DomainError:
    """Count one failure of ``ip``; return the error to answer: ``refused`` or a 429."""
    from ledgerline.auth import ratelimits
    from ledgerline.db import transaction

    limit = settings().rate_limits.get(LIMIT_NAME)
    if ip is None or limit is None:
        return refused
    check = ratelimits.Check(f"{LIMIT_NAME}:ip:{ip}", limit, LIMIT_NAME)

    def work(cur: Cursor) -> list[ratelimits.Refusal]:
        over = ratelimits.hit(cur, [check])
        if over and over[0].hits == limit.count + 1:  # the first refusal of a window, not every one
            actor = Actor(id=None, type="anonymous", ip=ip)
            audit.record(cur, actor, events.RATE_LIMITED, "rate_limit", check.key, metadata={"limit": LIMIT_NAME})
        return over

    over = transaction(work)
    if not over:
        return refused
    with _lock:
        _blocked[ip] = time.monotonic() + over[0].retry_after
    return _too_many(over[0].retry_after)


def _too_many(seconds: float) -> errors.DomainError:
    wait = max(1, int(seconds + 0.999))
    return errors.RateLimited(
        f"too many failed sign-in attempts from this address; try again in {wait} s", retry_after=wait
    )


def forget() -> None:
    """Drop what this process remembers (tests of the limit)."""
    with _lock:
        _blocked.clear()
