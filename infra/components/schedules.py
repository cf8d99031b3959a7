"""A scheduled job: an EventBridge rule with the row's exact expression and its Lambda."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from constructs import Construct

from infra import constants as c
from infra.components.functions import FunctionPlatform, FunctionSpec, LedgerFunction
from ledgerline.jobs import Schedule

# EventBridge invokes asynchronously; a run that cannot start within a minute is
# skipped, because the next tick does the same work.
MAX_EVENT_AGE = Duration.seconds(60)


class ScheduledJob(Construct):
    """One run at a time (reserved concurrency 1), no automatic retries: every job is
    idempotent and the next tick picks up what a failed run left. A ``planned`` row's
    rule is created DISABLED."""

    def __init__(
        self, scope: Construct, construct_id: str, *, row: Schedule, platform: FunctionPlatform, names: c.Names
    ) -> None:
        super().__init__(scope, construct_id)
        self.row = row
        self.handler = LedgerFunction(
            self,
            "Job",
            spec=FunctionSpec(
                function_name=names.job_function(row.name),
                handler=f"{row.handler}.handler",
                description=row.description,
                timeout=Duration.seconds(row.timeout_seconds),
                grants=row.grants,
                reserved_concurrency=c.JOB_RESERVED_CONCURRENCY,
            ),
            platform=platform,
        )
        self.handler.function.configure_async_invoke(max_event_age=MAX_EVENT_AGE, retry_attempts=0)
        self.rule = events.Rule(
            self,
            "Rule",
            rule_name=names.rule(row.name),
            description=row.description,
            schedule=events.Schedule.expression(row.expression),
            enabled=not row.planned,
            targets=[targets.LambdaFunction(self.handler.function, retry_attempts=0, max_event_age=MAX_EVENT_AGE)],
        )
