"""The local stand-in for EventBridge schedules (moto stores schedules but never fires them).

Every ``ledgerline.jobs.SCHEDULES`` row that is not ``planned`` fires on the very same
``rate(...)`` / ``cron(...)`` expression the CDK app deploys, in UTC, and its handler gets
the event EventBridge would send. One scheduler thread keeps the clock; each schedule
runs on a runner thread of its own (a warm "Lambda": its database connection is reused),
so a slow job never delays the others and the same schedule never runs twice at once
(a fire that finds the previous run still going is skipped and logged). A run that
raises is logged; the scheduler carries on.

Expressions follow the EventBridge rules: six cron fields ``min hour day-of-month month
day-of-week year``, exactly one of the two day fields is ``?``, day-of-week 1-7 is
SUN-SAT; ``L``, ``W`` and ``#`` are refused (no job of ours needs them). A rate
expression fires every period counted from the scheduler's start.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ledgerline.jobs import SCHEDULES, Schedule
from ledgerline.local.gateway import LambdaContext

logger = logging.getLogger("ledgerline.scheduler")

MAX_SLEEP_SECONDS = 1.0  # re-read the clock at least this often (clock jumps, quick stop)
LAST_YEAR = 2199  # EventBridge's year field range is 1970-2199

_MONTHS = {
    m: i
    for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1)
}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}
_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_CRON = re.compile(r"cron\((.*)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class ExpressionError(ValueError):
    """A schedule expression EventBridge (or this stand-in) does not accept."""


Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Rate:
    period: timedelta

    def next_after(self, moment: datetime, anchor: datetime) -> datetime:
        """The first fire strictly after ``moment`` of the series anchor + k·period, k ≥ 1."""
        if moment < anchor:
            return anchor + self.period
        elapsed = moment - anchor
        periods = elapsed // self.period + 1
        return anchor + periods * self.period


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None  # None: '?' (the day-of-week field decides)
    months: frozenset[int]
    days_of_week: frozenset[int] | None  # 1 = SUN … 7 = SAT; None: '?'
    years: frozenset[int]

    def _day_matches(self, day: datetime) -> bool:
        if self.days_of_month is not None:
            return day.day in self.days_of_month
        assert self.days_of_week is not None
        return (day.weekday() + 1) % 7 + 1 in self.days_of_week

    def next_after(self, moment: datetime, anchor: datetime | None = None) -> datetime | None:
        """The first matching minute strictly after ``moment`` (UTC); None if none is left."""
        t = moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        while t.year <= LAST_YEAR:
            if t.year not in self.years:
                later = [y for y in self.years if y > t.year]
                if not later:
                    return None
                t = t.replace(year=min(later), month=1, day=1, hour=0, minute=0)
                continue
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t += timedelta(minutes=1)
                continue
            return t
        return None


Expression = Rate | Cron


def parse(expression: str) -> Expression:
    """``rate(5 minutes)`` or ``cron(0 2 * * ? *)`` → an expression; ExpressionError if invalid."""
    text = expression.strip()
    m = _RATE.fullmatch(text)
    if m:
        value, unit = int(m.group(1)), m.group(2)
        if value < 1:
            raise ExpressionError(f"{expression}: a rate must be at least 1")
        singular = unit.rstrip("s")
        if (value == 1) != (unit == singular):
            raise ExpressionError(
                f"{expression}: EventBridge wants the singular unit for 1 and the plural otherwise "
                f"(rate(1 {singular}), rate({max(value, 2)} {singular}s))"
            )
        return Rate(timedelta(seconds=value * _UNIT_SECONDS[singular]))
    m = _CRON.fullmatch(text)
    if m:
        return _parse_cron(expression, m.group(1).split())
    raise ExpressionError(
        f"{expression}: expected rate(N minute[s]|hour[s]|day[s]) or cron(min hour dom month dow year)"
    )


def _parse_cron(expression: str, fields: list[str]) -> Cron:
    if len(fields) != 6:
        raise ExpressionError(
            f"{expression}: EventBridge cron has 6 fields (minutes hours day-of-month month day-of-week year), "
            f"got {len(fields)}"
        )
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ExpressionError(f"{expression}: exactly one of day-of-month and day-of-week must be '?'")
    return Cron(
        minutes=_field(expression, "minutes", minute, 0, 59),
        hours=_field(expression, "hours", hour, 0, 23),
        days_of_month=None if dom == "?" else _field(expression, "day-of-month", dom, 1, 31),
        months=_field(expression, "month", month, 1, 12, _MONTHS),
        days_of_week=None if dow == "?" else _field(expression, "day-of-week", dow, 1, 7, _DAYS),
        years=_field(expression, "year", year, 1970, LAST_YEAR),
    )


def _field(
    expression: str, name: str, text: str, low: int, high: int, names: dict[str, int] | None = None
) -> frozenset[int]:
    if any(c in text.upper() for c in "LW#") and not (names and _only_names(text, names)):
        raise ExpressionError(
            f"{expression}: the {name} field {text!r} uses L, W or #, which the local scheduler does not support"
        )
    if text == "?":
        raise ExpressionError(f"{expression}: '?' is allowed only in day-of-month or day-of-week")
    values: set[int] = set()
    for part in text.split(","):
        values.update(_part(expression, name, part, low, high, names))
    return frozenset(values)


def _only_names(text: str, names: dict[str, int]) -> bool:
    # "WED" and "JUL" contain W / L but are names, not the special characters.
    tokens = re.split(r"[,\-/]", text.upper())
    return all(t in names or t.isdigit() or t == "*" for t in tokens)


def _part(expression: str, name: str, part: str, low: int, high: int, names: dict[str, int] | None) -> range:
    def value(token: str) -> int:
        token = token.upper()
        if names and token in names:
            return names[token]
        if not token.isdigit():
            raise ExpressionError(f"{expression}: {token!r} is not a valid {name} value")
        n = int(token)
        if not low <= n <= high:
            raise ExpressionError(f"{expression}: {name} {n} is outside {low}-{high}")
        return n

    base, _, step_text = part.partition("/")
    step = 1
    if step_text:
        if not step_text.isdigit() or int(step_text) < 1:
            raise ExpressionError(f"{expression}: the step in {part!r} must be a positive number")
        step = int(step_text)
    if base == "*":
        start, end = low, high
    elif "-" in base:
        first, _, last = base.partition("-")
        start, end = value(first), value(last)
        if start > end:
            raise ExpressionError(f"{expression}: the {name} range {base!r} runs backwards")
    else:
        start = value(base)
        end = high if step_text else start  # "0/15": from 0 every 15
    return range(start, end + 1, step)


# --------------------------------------------------------------------------- the scheduler


def scheduled_event(
    schedule: Schedule, fire_time: datetime, *, prefix: str, region: str, account: str
) -> dict[str, Any]:
    """The event EventBridge sends to a scheduled rule's target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": fire_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account}:rule/{prefix}-{schedule.name}"],
        "detail": {},
    }


def _load_handler(schedule: Schedule) -> Callable[[dict[str, Any], Any], Any]:
    return importlib.import_module(schedule.handler).handler


@dataclass
class _Job:
    schedule: Schedule
    expression: Expression
    next_fire: datetime | None
    running: bool = False
    runs: int = 0
    failures: int = 0
    skipped: int = 0
    import_error_logged: bool = False
    handler: Callable[[dict[str, Any], Any], Any] | None = None


class Scheduler:
    """Fires schedules on time until ``stop()``; ``tick(now)`` is the clock-free core."""

    def __init__(
        self,
        schedules: Iterable[Schedule] | None = None,
        *,
        clock: Clock = utc_now,
        anchor: datetime | None = None,
        load_handler: Callable[[Schedule], Callable[[dict[str, Any], Any], Any]] = _load_handler,
        account: str = "123456789012",
    ) -> None:
        from ledgerline.config import settings

        cfg = settings()
        self.prefix = cfg.resource_prefix
        self.region = cfg.aws_region
        self.account = account
        self.clock = clock
        self.anchor = anchor or clock()
        self.load_handler = load_handler
        rows = [s for s in (SCHEDULES if schedules is None else schedules) if not s.planned]
        self.jobs: dict[str, _Job] = {}
        for s in rows:
            expression = parse(s.expression)
            self.jobs[s.name] = _Job(s, expression, expression.next_after(self.anchor, self.anchor))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._runners: set[threading.Thread] = set()

    # -- the clock ---------------------------------------------------------------------
    def start(self) -> Scheduler:
        # Import every handler in this thread, before any runner exists: concurrent first
        # imports of packages with import cycles (powertools) can see half-built modules.
        for job in self.jobs.values():
            self._load(job)
        self._thread = threading.Thread(target=self._loop, name="ledgerline-scheduler", daemon=True)
        self._thread.start()
        logger.info(
            "scheduler started: %s", ", ".join(f"{j.schedule.name} {j.schedule.expression}" for j in self.jobs.values())
        )
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick(self.clock())
            except Exception:  # the clock must keep running whatever a tick hits
                logger.exception("scheduler tick failed")
            self._stop.wait(self._sleep_seconds())

    def _sleep_seconds(self) -> float:
        upcoming = [j.next_fire for j in self.jobs.values() if j.next_fire is not None]
        if not upcoming:
            return MAX_SLEEP_SECONDS
        wait = (min(upcoming) - self.clock()).total_seconds()
        return min(MAX_SLEEP_SECONDS, max(0.0, wait))

    def tick(self, now: datetime) -> list[str]:
        """Fire every schedule due at ``now``; return the names fired (or skipped as busy)."""
        due = []
        with self._lock:
            for job in self.jobs.values():
                if job.next_fire is None or job.next_fire > now:
                    continue
                fire_time = job.next_fire
                # Fire once for however many times were missed (a laptop asleep), then
                # continue from now, as a late EventBridge target would.
                job.next_fire = job.expression.next_after(now, self.anchor)
                due.append((job, fire_time))
        for job, fire_time in due:
            self._fire(job, fire_time)
        return [job.schedule.name for job, _ in due]

    def trigger(self, name: str) -> bool:
        """Run a schedule now, outside its timetable (developers, e2e tests)."""
        return self._fire(self.jobs[name], self.clock())

    # -- runs --------------------------------------------------------------------------
    def _fire(self, job: _Job, fire_time: datetime) -> bool:
        with self._lock:
            if job.running:
                job.skipped += 1
                logger.warning("schedule %s is still running; skipped the %s fire", job.schedule.name, fire_time)
                return False
            if self._stop.is_set():
                return False
            job.running = True
        runner = threading.Thread(
            target=self._run, args=(job, fire_time), name=f"schedule-{job.schedule.name}", daemon=True
        )
        with self._lock:
            self._runners.add(runner)
        runner.start()
        return True

    def _load(self, job: _Job) -> Callable[[dict[str, Any], Any], Any] | None:
        if job.handler is None:
            try:
                job.handler = self.load_handler(job.schedule)
            except ImportError as exc:
                if not job.import_error_logged:
                    logger.error(
                        "schedule %s: handler %s cannot be imported: %s", job.schedule.name, job.schedule.handler, exc
                    )
                    job.import_error_logged = True
        return job.handler

    def _run(self, job: _Job, fire_time: datetime) -> None:
        schedule = job.schedule
        started = time.monotonic()
        try:
            handler = self._load(job)
            if handler is None:
                job.failures += 1
                return
            event = scheduled_event(schedule, fire_time, prefix=self.prefix, region=self.region, account=self.account)
            context = LambdaContext(
                function_name=f"{self.prefix}-{schedule.name}",
                aws_request_id=str(uuid.uuid4()),
                timeout_seconds=schedule.timeout_seconds,
            )
            handler(event, context)
            job.runs += 1
        except Exception:
            job.failures += 1
            logger.exception("schedule %s failed", schedule.name)
        finally:
            elapsed = time.monotonic() - started
            if elapsed > schedule.timeout_seconds:
                logger.warning(
                    "schedule %s ran %.1fs, over its %ss Lambda timeout (AWS would have killed it)",
                    schedule.name,
                    elapsed,
                    schedule.timeout_seconds,
                )
            _close_thread_connection()
            with self._lock:
                job.running = False
                self._runners.discard(threading.current_thread())

    def stop(self, timeout: float = 10.0) -> None:
        """Stop firing; wait up to ``timeout`` for runs in progress to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        with self._lock:
            runners = list(self._runners)
        for runner in runners:
            runner.join(max(0.0, deadline - time.monotonic()))
            if runner.is_alive():
                logger.warning("%s still running at stop; abandoned", runner.name)


def _close_thread_connection() -> None:
    # Each run has a thread of its own: close its database connection rather than leave
    # it to the garbage collector.
    try:
        from ledgerline.db.connection import discard_connection
    except ImportError:
        return
    discard_connection()


def start(**kwargs: Any) -> Scheduler:
    """Start the scheduler for every non-planned SCHEDULES row (what ``dev up`` calls)."""
    return Scheduler(**kwargs).start()
