"""Rate limits, velocity checks and login throttling, in PostgreSQL (shared by every
function instance).

Rate limits: a fixed window per (limit, subject), counted by ONE atomic upsert for all
the subjects of a request (per IP and per account): ``login`` 5/min, ``otp`` 3/min,
``money`` 10/min and ``default`` for the rest, from ``settings().rate_limits``. Refused
requests count too, so hammering does not open the next window early. 429 with
``Retry-After`` = seconds to the end of the window.

Velocity: transfers per user (routes tagged ``transfers``), ``settings().velocity``
(>20 in 60 s blocked); every block is audited.

Login throttling (per login name, known or not, so nothing is revealed about which
accounts exist): the first ``FREE_FAILURES`` consecutive failures cost nothing; each
further one makes the next attempt wait 1, 2, 4 ... up to ``MAX_DELAY`` seconds (429);
``LOCK_AFTER`` consecutive failures lock the login for ``LOCK_SECONDS`` (423). The lock
cannot hold a victim out forever: it ends by itself and forgets the failures, a password
reset (proof of the mailbox) lifts it at once, and sessions already open keep working.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ledgerline import audit, errors
from ledgerline.audit import Actor
from ledgerline.auth import events
from ledgerline.config import Limit, settings

if TYPE_CHECKING:
    from ledgerline.http.endpoint import Request
    from ledgerline.routes import Route

FREE_FAILURES = 3
MAX_DELAY = 60
LOCK_AFTER = 10
LOCK_SECONDS = 30 * 60

EXEMPT_TAGS = frozenset({"system", "jwks"})  # health, OpenAPI, JWKS: never refused


@dataclass(frozen=True)
class Check:
    key: str
    limit: Limit
    name: str  # the limit's name (login/otp/money/default/velocity), for messages


@dataclass(frozen=True)
class Refusal:
    check: Check
    hits: int
    retry_after: int


def hit(cur: Any, checks: list[Check]) -> list[Refusal]:
    """Count one request against every check in one statement; return those exceeded."""
    if not checks:
        return []
    by_key = {c.key: c for c in sorted(checks, key=lambda c: c.key)}  # sorted: no deadlocks
    cur.execute(
        """
        INSERT INTO rate_limit_buckets AS b (key, window_start, hits)
        SELECT k, to_timestamp(floor(extract(epoch FROM now()) / p) * p), 1
          FROM unnest(%(keys)s::text[], %(periods)s::int[]) AS t (k, p)
        ON CONFLICT (key) DO UPDATE
           SET hits = CASE WHEN b.window_start = excluded.window_start THEN b.hits + 1 ELSE 1 END,
               window_start = excluded.window_start
        RETURNING key, hits, extract(epoch FROM window_start - now()) AS window_offset
        """,
        {"keys": list(by_key), "periods": [c.limit.period_seconds for c in by_key.values()]},
    )
    refused = []
    for row in cur.fetchall():
        check = by_key[row["key"]]
        if row["hits"] > check.limit.count:
            remaining = float(row["window_offset"]) + check.limit.period_seconds
            refused.append(Refusal(check, row["hits"], max(1, math.ceil(remaining))))
    return refused


def limit_name(route: Route) -> str:
    if "login" in route.tags:
        return "login"
    if "otp" in route.tags:
        return "otp"
    if route.money:
        return "money"
    return "default"


def request_checks(route: Route, request: Request) -> list[Check]:
    cfg = settings()
    checks = []
    name = limit_name(route)
    limit = cfg.rate_limits.get(name, cfg.rate_limits.get("default"))
    if limit is not None:
        if request.ip:
            checks.append(Check(f"{name}:ip:{request.ip}", limit, name))
        if request.principal is not None:
            checks.append(Check(f"{name}:user:{request.principal.id}", limit, name))
    if cfg.velocity is not None and "transfers" in route.tags and request.principal is not None:
        checks.append(Check(f"velocity:transfers:user:{request.principal.id}", cfg.velocity, "velocity"))
    return checks


def guard(route: Route, request: Request) -> None:
    """The Endpoint guard: rate limits and velocity before the route runs."""
    if EXEMPT_TAGS.intersection(route.tags):
        return
    _scope_guard(route, request)
    checks = request_checks(route, request)
    if not checks:
        return
    from ledgerline.db import transaction

    refusals = transaction(lambda cur: _count_and_audit(cur, checks, request.actor, route))
    if refusals:
        raise _error(refusals)


def _scope_guard(route: Route, request: Request) -> None:
    principal = request.principal
    if principal is not None and principal.claims.get("typ") == "api_key":
        from ledgerline.auth.apikeys import check_scope

        check_scope(route, principal.claims)
        return
    if principal is not None and principal.enrolment_only and "otp_enrolment" not in route.tags:
        raise errors.Forbidden(
            "administrators and auditors must sign in with two-factor authentication: enrol with "
            "POST /v1/auth/otp/setup and POST /v1/auth/otp/verify if not done yet, then log in again with the code"
        )


def _count_and_audit(cur: Any, checks: list[Check], actor: Actor, route: Route) -> list[Refusal]:
    refusals = hit(cur, checks)
    for r in refusals:
        meta = {"limit": r.check.name, "key": r.check.key, "hits": r.hits, "route": f"{route.method} {route.path}"}
        if r.check.name == "velocity":
            events_action = events.VELOCITY_BLOCKED
        elif r.hits == r.check.limit.count + 1:
            events_action = events.RATE_LIMITED  # the first refusal of a window, not every one
        else:
            continue
        audit.record(cur, actor, events_action, "rate_limit", r.check.key, metadata=meta)
    return refusals


def _error(refusals: list[Refusal]) -> errors.DomainError:
    worst = max(refusals, key=lambda r: r.retry_after)
    if worst.check.name == "velocity":
        limit = worst.check.limit
        detail = (
            f"more than {limit.count} transfers in {limit.period_seconds} s; "
            f"try again in {worst.retry_after} s or contact support"
        )
    else:
        detail = f"too many requests; try again in {worst.retry_after} s"
    return errors.RateLimited(detail, retry_after=worst.retry_after)


def check_now(cur: Any, checks: list[Check]) -> None:
    """Count and refuse inside a domain flow (per-account login and OTP limits)."""
    refusals = hit(cur, checks)
    if refusals:
        raise _error(refusals)


def account_check(name: str, subject: str) -> list[Check]:
    limit = settings().rate_limits.get(name)
    return [] if limit is None else [Check(f"{name}:account:{subject}", limit, name)]


# -- login throttling --------------------------------------------------------------------


def login_subject(email: str) -> bytes:
    return hashlib.sha256(email.strip().lower().encode()).digest()


@dataclass(frozen=True)
class Gate:
    failures: int
    locked_until: datetime | None
    wait_seconds: int  # >0: a progressive delay is still running


def delay_after(failures: int) -> int:
    """Seconds to wait before the next attempt after ``failures`` consecutive failures."""
    if failures < FREE_FAILURES:
        return 0
    return min(MAX_DELAY, 2 ** (failures - FREE_FAILURES))


def login_gate(cur: Any, subject: bytes) -> Gate:
    """Where this login name stands; a lock that has run out is forgotten."""
    cur.execute(
        """
        SELECT failures, locked_until, last_failed_at,
               locked_until IS NOT NULL AND locked_until <= now() AS lock_over,
               extract(epoch FROM now() - last_failed_at) AS since_failure
          FROM login_throttle WHERE subject = %s
        """,
        (subject,),
    )
    row = cur.fetchone()
    if row is None:
        return Gate(0, None, 0)
    if row["lock_over"]:
        cur.execute("DELETE FROM login_throttle WHERE subject = %s", (subject,))
        return Gate(0, None, 0)
    if row["locked_until"] is not None:
        return Gate(row["failures"], row["locked_until"], 0)
    wait = delay_after(row["failures"]) - float(row["since_failure"] or 0)
    return Gate(row["failures"], None, max(0, math.ceil(wait)))


def enforce_gate(gate: Gate) -> None:
    if gate.locked_until is not None:
        raise errors.AccountLocked(
            "too many failed attempts: sign-in is locked for 30 minutes; reset the password by email to unlock it now",
            headers={"Retry-After": str(LOCK_SECONDS)},
        )
    if gate.wait_seconds > 0:
        raise errors.RateLimited(
            f"too many failed attempts; wait {gate.wait_seconds} s before trying again",
            retry_after=gate.wait_seconds,
        )


def record_login_failure(cur: Any, subject: bytes) -> tuple[int, bool]:
    """Count a failure; return (consecutive failures, whether this one locked the login)."""
    cur.execute(
        """
        INSERT INTO login_throttle AS t (subject, failures, last_failed_at)
        VALUES (%(s)s, 1, now())
        ON CONFLICT (subject) DO UPDATE
           SET failures = t.failures + 1, last_failed_at = now(),
               locked_until = CASE WHEN t.failures + 1 >= %(lock_after)s
                                   THEN now() + make_interval(secs => %(lock)s) END
        RETURNING failures, locked_until IS NOT NULL AS locked
        """,
        {"s": subject, "lock_after": LOCK_AFTER, "lock": LOCK_SECONDS},
    )
    row = cur.fetchone()
    return row["failures"], bool(row["locked"]) and row["failures"] == LOCK_AFTER


def clear_login_failures(cur: Any, subject: bytes) -> None:
    cur.execute("DELETE FROM login_throttle WHERE subject = %s", (subject,))
