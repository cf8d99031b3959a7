"""A scheduled job: an EventBridge rule with the row's exact expression and its Lambda."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants as c
from infra.components.functions import FunctionPlatform, FunctionSpec, LedgerFunction
from ledgerline.jobs import Schedule
from ledgerline.local.scheduler import Rate, parse

# Bounds AWS sets: Lambda keeps an async event 60 s to 6 h, EventBridge 60 s to 24 h.
MIN_EVENT_AGE = timedelta(seconds=60)
LAMBDA_MAX_EVENT_AGE = timedelta(hours=6)
EVENTBRIDGE_MAX_EVENT_AGE = timedelta(hours=24)
# A cron's shortest interval is measured over this much of its timetable.
CRON_HORIZON = timedelta(days=35)
_ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)


def shortest_interval(expression: str) -> timedelta:
    """The least time between two ticks of an EventBridge expression (a rate's period; for
    a cron, measured over five weeks, or five weeks if it fires less often)."""
    parsed = parse(expression)
    if isinstance(parsed, Rate):
        return parsed.period
    ticks: list[datetime] = []
    moment: datetime | None = _ANCHOR
    while moment is not None and moment - _ANCHOR <= CRON_HORIZON:
        moment = parsed.next_after(moment)
        if moment is not None:
            ticks.append(moment)
    gaps = [later - earlier for earlier, later in pairwise(ticks)]
    return min(gaps, default=CRON_HORIZON)


@dataclass(frozen=True)
class JobTiming:
    """How a job's runs are retried without ever overlapping the next tick.

    Reserved concurrency 1 makes a tick that finds the previous run still going a
    *throttle* (and the Throttles alarm fires). So: the timeout must end the run before
    the next tick can come (``JOB_START_JITTER`` early); retries happen only where all of
    them, with Lambda's waits between them, also end before the next tick; otherwise the
    next tick is the retry. Every event that still fails, or ages out, goes to the jobs'
    dead-letter queue (and its alarm) instead of vanishing into a metric."""

    interval: timedelta  # shortest time between two ticks
    timeout: timedelta
    retry_attempts: int  # Lambda's (function errors) and EventBridge's (failed deliveries)
    max_event_age: timedelta  # in Lambda's async queue, retries included (their last start fits)
    delivery_max_age: timedelta  # EventBridge: deliver no later than this, else dead-letter

    @classmethod
    def of(cls, row: Schedule) -> JobTiming:
        interval = shortest_interval(row.expression)
        timeout = timedelta(seconds=row.timeout_seconds)
        jitter = timedelta(seconds=c.JOB_START_JITTER.to_seconds())
        if timeout > interval - jitter:
            longest = int((interval - jitter).total_seconds())
            raise ValueError(
                f"schedule {row.name}: timeout_seconds={row.timeout_seconds} does not end before the next tick "
                f"of {row.expression} ({int(interval.total_seconds())} s apart, {int(jitter.total_seconds())} s "
                f"early): give it at most {longest} s and let the next run continue, or a longer schedule"
            )
        with_retries = (c.JOB_RETRY_ATTEMPTS + 1) * timeout + timedelta(seconds=c.JOB_RETRY_DELAYS.to_seconds())
        retries = c.JOB_RETRY_ATTEMPTS if with_retries + jitter <= interval else 0
        return cls(
            interval=interval,
            timeout=timeout,
            retry_attempts=retries,
            # An event that starts later than this could still be running at the next tick.
            max_event_age=_clamp(interval - timeout - jitter, LAMBDA_MAX_EVENT_AGE),
            delivery_max_age=_clamp(interval - timeout - jitter, EVENTBRIDGE_MAX_EVENT_AGE),
        )


def _clamp(age: timedelta, longest: timedelta) -> timedelta:
    return max(MIN_EVENT_AGE, min(age, longest))


def _duration(value: timedelta) -> Duration:
    return Duration.seconds(int(value.total_seconds()))


class ScheduledJob(Construct):
    """One run at a time (reserved concurrency 1), with the retries and dead-letter queue
    of its ``JobTiming``. A ``planned`` row's rule is created DISABLED."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        row: Schedule,
        platform: FunctionPlatform,
        names: c.Names,
        dead_letters: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        self.row = row
        self.timing = JobTiming.of(row)
        self.handler = LedgerFunction(
            self,
            "Job",
            spec=FunctionSpec(
                function_name=names.job_function(row.name),
                handler=f"{row.handler}.handler",
                description=row.description,
                timeout=_duration(self.timing.timeout),
                grants=row.grants,
                reserved_concurrency=c.JOB_RESERVED_CONCURRENCY,
            ),
            platform=platform,
        )
        self.handler.function.configure_async_invoke(
            max_event_age=_duration(self.timing.max_event_age),
            retry_attempts=self.timing.retry_attempts,
            on_failure=destinations.SqsDestination(dead_letters),
        )
        self.rule = events.Rule(
            self,
            "Rule",
            rule_name=names.rule(row.name),
            description=row.description,
            schedule=events.Schedule.expression(row.expression),
            enabled=not row.planned,
            targets=[
                targets.LambdaFunction(
                    self.handler.function,
                    retry_attempts=self.timing.retry_attempts,
                    max_event_age=_duration(self.timing.delivery_max_age),
                    dead_letter_queue=dead_letters,
                )
            ],
        )
