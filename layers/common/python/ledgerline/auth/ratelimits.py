"""Rate limits and velocity checks, counted in PostgreSQL (shared by every function
instance).

A sliding-window counter per (limit, subject), counted by ONE atomic upsert for all the
subjects of a request (the SQL function ``rate_limit_hit``): ``login`` 5/min, ``otp``
3/min, ``money`` 10/min and ``default`` for the rest, from ``settings().rate_limits``; a
route's class is its row's ``limit``. Windows follow each other from a subject's first
request, and the previous window's hits weigh by how much of it is still inside the last
period, so a burst straddling a window's end passes at most the limit (a fixed window
passed twice that). Only admitted requests count: hammering neither shortens nor lengthens
the wait. 429 with ``Retry-After`` = seconds until one more request would pass (after a
full burst: the period plus period/limit, while the burst fades). Velocity
(``settings().velocity``, >20 in 60 s) counts the money-moving requests of routes marked
``velocity``, per user, the same way.

A request's checks are counted inside its admission statement (``auth_admit``,
``ledgerline.auth.admission``); ``hit`` counts checks in a transaction of one's own
(login and OTP attempts per account, failed authentications per IP).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ledgerline import errors, jsonutil
from ledgerline.config import Limit, settings
from ledgerline.routes import RateLimit, Route

if TYPE_CHECKING:
    from ledgerline.db import Cursor


@dataclass(frozen=True)
class Check:
    key: str
    limit: Limit
    name: str  # the limit's name (login/otp/money/default/velocity/auth), for messages
    weight: int = 1  # how many this request counts for (a batch's items, against velocity)

    def to_json(self, route: Route | None = None) -> dict[str, Any]:
        """As ``auth_admit`` counts it."""
        return {
            "key": self.key,
            "count": self.limit.count,
            "period": self.limit.period_seconds,
            "name": self.name,
            "route": f"{route.method} {route.path}" if route else None,
            "weight": self.weight,
        }


@dataclass(frozen=True)
class Refusal:
    check: Check
    hits: int
    retry_after: int


def request_checks(route: Route, ip: str | None, caller: UUID | None, items: int = 1) -> list[Check]:
    """What one request to ``route`` counts against; ``items``: what it weighs against
    velocity (the transfers of a batch, ``Route.velocity_items``)."""
    if route.limit is RateLimit.NONE:
        return []
    cfg = settings()
    name = route.limit.value
    limit = cfg.rate_limits.get(name, cfg.rate_limits.get("default"))
    checks = []
    if limit is not None:
        if ip:
            checks.append(Check(f"{name}:ip:{ip}", limit, name))
        if caller is not None:
            checks.append(Check(f"{name}:user:{caller}", limit, name))
    if cfg.velocity is not None and route.velocity and caller is not None:
        checks.append(Check(f"velocity:money:user:{caller}", cfg.velocity, "velocity", weight=max(1, items)))
    return checks


def account_check(name: str, subject: str) -> list[Check]:
    """A per-account check (login and OTP attempts), counted inside the flow."""
    limit = settings().rate_limits.get(name)
    return [] if limit is None else [Check(f"{name}:account:{subject}", limit, name)]


def hit(cur: Cursor, checks: list[Check]) -> list[Refusal]:
    """Count one request against every check (``rate_limit_hit``); return those exceeded."""
    if not checks:
        return []
    by_key = {c.key: c for c in checks}
    cur.execute(
        "SELECT spec->>'key' AS key, hits, retry_after FROM rate_limit_hit(%s::jsonb)",
        (jsonutil.dumps([c.to_json() for c in by_key.values()]),),
    )
    return [Refusal(by_key[row["key"]], row["hits"], row["retry_after"]) for row in cur.fetchall()]


def refused(refusals: list[Refusal]) -> errors.DomainError:
    """The 429 for a request over one or more of its limits."""
    worst = max(refusals, key=lambda r: r.retry_after)
    return errors.RateLimited(f"too many requests; try again in {worst.retry_after} s", retry_after=worst.retry_after)
