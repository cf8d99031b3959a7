"""The local EventBridge stand-in: expressions, next fire times, and firing (no database)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from ledgerline.jobs import SCHEDULES, Schedule
from ledgerline.local import scheduler
from ledgerline.local.scheduler import Cron, ExpressionError, Rate, Scheduler, parse


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


T0 = at("2026-01-01T00:00:00")  # a Thursday


# --------------------------------------------------------------------------- rate


@pytest.mark.parametrize(
    ("expression", "moment", "expected"),
    [
        ("rate(1 minute)", "2026-01-01T00:00:00", "2026-01-01T00:01:00"),
        ("rate(1 minute)", "2026-01-01T00:00:59", "2026-01-01T00:01:00"),
        ("rate(1 minute)", "2026-01-01T00:01:00", "2026-01-01T00:02:00"),
        ("rate(5 minutes)", "2026-01-01T00:07:30", "2026-01-01T00:10:00"),
        ("rate(2 hours)", "2026-01-01T03:00:00", "2026-01-01T04:00:00"),
        ("rate(1 day)", "2026-01-03T12:00:00", "2026-01-04T00:00:00"),
        ("rate(3 days)", "2025-12-31T00:00:00", "2026-01-04T00:00:00"),  # before the anchor
    ],
)
def test_rate_fires_every_period_from_the_anchor(expression, moment, expected):
    assert parse(expression).next_after(at(moment), T0) == at(expected)


@pytest.mark.parametrize(
    "expression",
    ["rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "rate(2 weeks)", "rate(-1 hours)", "rate(minutes)"],
)
def test_rate_expressions_eventbridge_refuses_are_refused(expression):
    with pytest.raises(ExpressionError):
        parse(expression)


# --------------------------------------------------------------------------- cron


@pytest.mark.parametrize(
    ("expression", "moment", "expected"),
    [
        # the daily reconciliation: 02:30 UTC
        ("cron(30 2 * * ? *)", "2026-01-01T02:29:59", "2026-01-01T02:30:00"),
        ("cron(30 2 * * ? *)", "2026-01-01T02:30:00", "2026-01-02T02:30:00"),
        ("cron(0 6 * * ? *)", "2026-12-31T07:00:00", "2027-01-01T06:00:00"),
        # steps
        ("cron(0/15 * * * ? *)", "2026-01-01T10:07:00", "2026-01-01T10:15:00"),
        ("cron(*/15 * * * ? *)", "2026-01-01T10:45:00", "2026-01-01T11:00:00"),
        ("cron(10-20/5 8 * * ? *)", "2026-01-01T08:11:00", "2026-01-01T08:15:00"),
        ("cron(10-20/5 8 * * ? *)", "2026-01-01T08:20:00", "2026-01-02T08:10:00"),
        # day of week: 1 = SUN; Jan 2 2026 is a Friday
        ("cron(0 9 ? * MON-FRI *)", "2026-01-02T10:00:00", "2026-01-05T09:00:00"),
        ("cron(0 12 ? * 1 *)", "2026-01-01T00:00:00", "2026-01-04T12:00:00"),
        ("cron(0 12 ? * SAT,SUN *)", "2026-01-01T00:00:00", "2026-01-03T12:00:00"),
        ("cron(0 8 ? * WED *)", "2026-01-01T00:00:00", "2026-01-07T08:00:00"),
        # lists and names of months; days that not every month has
        ("cron(0 0 1 JAN,JUL ? *)", "2026-02-01T00:00:00", "2026-07-01T00:00:00"),
        ("cron(0 0 31 * ? *)", "2026-04-01T00:00:00", "2026-05-31T00:00:00"),
        ("cron(0 0 29 2 ? *)", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),
        # years
        ("cron(15 10 * * ? 2030)", "2026-06-01T00:00:00", "2030-01-01T10:15:00"),
        ("cron(0 0 1 1 ? 2026-2028)", "2026-01-01T00:00:00", "2027-01-01T00:00:00"),
    ],
)
def test_cron_next_fire_times(expression, moment, expected):
    assert parse(expression).next_after(at(moment)) == at(expected)


def test_a_cron_whose_years_are_past_never_fires_again():
    assert parse("cron(0 0 1 1 ? 2020)").next_after(T0) is None


def test_cron_parses_into_explicit_sets():
    cron = parse("cron(0,30 9-17 ? * MON-FRI *)")
    assert isinstance(cron, Cron)
    assert cron.minutes == {0, 30}
    assert cron.hours == set(range(9, 18))
    assert cron.days_of_month is None
    assert cron.days_of_week == {2, 3, 4, 5, 6}


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("cron(0 2 * * ?)", "6 fields"),
        ("cron(0 2 * * * *)", "exactly one"),
        ("cron(0 2 ? * ? *)", "exactly one"),
        ("cron(0 2 L * ? *)", "L, W or #"),
        ("cron(0 2 15W * ? *)", "L, W or #"),
        ("cron(0 2 ? * 6#3 *)", "L, W or #"),
        ("cron(0 2 ? * 5L *)", "L, W or #"),
        ("cron(60 2 * * ? *)", "outside 0-59"),
        ("cron(0 24 * * ? *)", "outside 0-23"),
        ("cron(0 2 * 13 ? *)", "outside 1-12"),
        ("cron(0 2 ? * 8 *)", "outside 1-7"),
        ("cron(0 2 * * ? 1969)", "outside 1970-2199"),
        ("cron(30-10 2 * * ? *)", "backwards"),
        ("cron(0/0 2 * * ? *)", "step"),
        ("cron(? 2 * * ? *)", "'?'"),
        ("cron(0 2 * FOO ? *)", "not a valid month"),
        ("every minute", "expected rate"),
    ],
)
def test_cron_expressions_that_are_refused_say_why(expression, message):
    with pytest.raises(ExpressionError, match=message):
        parse(expression)


def test_every_schedule_in_the_job_table_parses():
    for s in SCHEDULES:
        expression = parse(s.expression)
        assert isinstance(expression, (Rate, Cron)), s.name


# --------------------------------------------------------------------------- firing


class Handlers:
    """Fake handler modules: record each invocation; a name may raise or block."""

    def __init__(self):
        self.calls = []
        self.raises = set()
        self.block = {}
        self.lock = threading.Lock()
        self.called = threading.Event()

    def load(self, schedule):
        def handler(event, context):
            with self.lock:
                self.calls.append((schedule.name, event, context))
            self.called.set()
            if schedule.name in self.block:
                self.block[schedule.name].wait(10)
            if schedule.name in self.raises:
                raise RuntimeError("job failed")

        return handler

    def names(self):
        with self.lock:
            return [c[0] for c in self.calls]


def _make(schedules, handlers, **kwargs):
    return Scheduler(schedules, clock=lambda: T0, anchor=T0, load_handler=handlers.load, **kwargs)


def _settle(s):
    deadline = time.monotonic() + 5
    while any(j.running for j in s.jobs.values()) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_tick_fires_due_schedules_with_an_eventbridge_event():
    # Given one schedule every minute and one daily at 02:30
    handlers = Handlers()
    rows = [
        Schedule("every-minute", "rate(1 minute)", "x.every_minute", "test"),
        Schedule("nightly", "cron(30 2 * * ? *)", "x.nightly", "test", timeout_seconds=900),
    ]
    s = _make(rows, handlers)
    # When the clock reaches 00:00:30 nothing is due; at 00:01 the minute job is
    assert s.tick(T0 + timedelta(seconds=30)) == []
    assert s.tick(T0 + timedelta(minutes=1)) == ["every-minute"]
    _settle(s)
    # Then its handler got what EventBridge sends, with a Lambda context
    [(name, event, context)] = handlers.calls
    assert name == "every-minute"
    assert event["version"] == "0"
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["time"] == "2026-01-01T00:01:00Z"
    assert event["detail"] == {}
    assert event["resources"][0].endswith(":rule/ledgerline-every-minute")
    assert event["id"]
    assert context.function_name == "ledgerline-every-minute"
    assert 0 < context.get_remaining_time_in_millis() <= 60_000
    # And the nightly job fires at 02:30, not before
    assert s.tick(at("2026-01-01T02:29:00")) == ["every-minute"]
    assert s.tick(at("2026-01-01T02:30:00")) == ["every-minute", "nightly"]
    _settle(s)
    assert s.jobs["nightly"].next_fire == at("2026-01-02T02:30:00")


def test_missed_fires_run_once_then_resume_on_the_timetable():
    handlers = Handlers()
    s = _make([Schedule("every-minute", "rate(1 minute)", "x", "test")], handlers)
    # The laptop slept through ten fires
    assert s.tick(T0 + timedelta(minutes=10, seconds=5)) == ["every-minute"]
    _settle(s)
    assert handlers.names() == ["every-minute"]
    assert s.jobs["every-minute"].next_fire == T0 + timedelta(minutes=11)


def test_a_failing_run_is_logged_and_the_scheduler_carries_on(caplog):
    handlers = Handlers()
    handlers.raises.add("flaky")
    s = _make([Schedule("flaky", "rate(1 minute)", "x", "test")], handlers)
    s.tick(T0 + timedelta(minutes=1))
    _settle(s)
    s.tick(T0 + timedelta(minutes=2))
    _settle(s)
    assert handlers.names() == ["flaky", "flaky"]
    assert s.jobs["flaky"].failures == 2
    assert "schedule flaky failed" in caplog.text


def test_a_schedule_never_runs_twice_at_once():
    handlers = Handlers()
    release = threading.Event()
    handlers.block["slow"] = release
    s = _make([Schedule("slow", "rate(1 minute)", "x", "test")], handlers)
    s.tick(T0 + timedelta(minutes=1))
    assert handlers.called.wait(5)
    # The next fire comes while the first run is still going: it is skipped
    assert s.tick(T0 + timedelta(minutes=2)) == ["slow"]
    assert s.trigger("slow") is False
    assert handlers.names() == ["slow"]
    assert s.jobs["slow"].skipped == 2
    release.set()
    _settle(s)
    s.tick(T0 + timedelta(minutes=3))
    _settle(s)
    assert handlers.names() == ["slow", "slow"]


def test_planned_schedules_do_not_fire_and_missing_handlers_do_not_stop_the_clock():
    def load(schedule):
        raise ImportError(f"No module named {schedule.handler!r}")

    rows = [
        Schedule("later", "rate(1 minute)", "x.later", "test", planned=True),
        Schedule("not-landed", "rate(1 minute)", "x.not_landed", "test"),
    ]
    s = Scheduler(rows, clock=lambda: T0, anchor=T0, load_handler=load)
    assert set(s.jobs) == {"not-landed"}
    assert s.tick(T0 + timedelta(minutes=1)) == ["not-landed"]
    _settle(s)
    assert s.jobs["not-landed"].failures == 1


def test_the_running_scheduler_fires_on_the_real_clock_and_stops_quickly():
    # Given a rate(1 minute) schedule whose series started 59.7 s ago
    handlers = Handlers()
    now = datetime.now(UTC)
    s = Scheduler(
        [Schedule("soon", "rate(1 minute)", "x", "test")],
        anchor=now - timedelta(seconds=59.7),
        load_handler=handlers.load,
    ).start()
    try:
        # Then it fires within the next second or so
        assert handlers.called.wait(3), "the scheduler did not fire"
        assert handlers.names() == ["soon"]
    finally:
        began = time.monotonic()
        s.stop()
        assert time.monotonic() - began < 2.5
    assert not s._thread.is_alive()


def test_start_builds_a_scheduler_for_the_real_job_table():
    s = scheduler.Scheduler()
    assert set(s.jobs) == {row.name for row in SCHEDULES if not row.planned}
    for job in s.jobs.values():
        assert job.next_fire is not None and job.next_fire > s.anchor
