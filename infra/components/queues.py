"""A work queue with its dead-letter queue, and the Lambda that consumes it."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants as c
from infra.components.functions import FunctionPlatform, FunctionSpec, LedgerFunction
from ledgerline.jobs import Queue

DLQ_RETENTION = Duration.days(14)
QUEUE_RETENTION = Duration.days(4)
# Messages may sit in a queue when its stack is deleted or the queue replaced: both are
# retained then. A failed first create deletes them (empty), so the retry can reuse the
# fixed names that other stacks address them by (SQS frees a name 60 s after a delete).
QUEUE_REMOVAL = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE


def dead_letter_queue(scope: Construct, construct_id: str, *, queue_name: str) -> sqs.Queue:
    """An encrypted, TLS-only queue that keeps failed messages two weeks (alarmed on depth)."""
    return sqs.Queue(
        scope,
        construct_id,
        queue_name=queue_name,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=DLQ_RETENTION,
        removal_policy=QUEUE_REMOVAL,
    )


class WorkQueue(Construct):
    """SQS-managed encryption, TLS-only policies, and redrive to ``<name>-dlq`` after
    the row's ``max_receive_count`` failed receives."""

    def __init__(self, scope: Construct, construct_id: str, *, row: Queue, names: c.Names) -> None:
        super().__init__(scope, construct_id)
        self.row = row
        self.dlq = dead_letter_queue(self, "Dlq", queue_name=names.queue(row.dlq_name))
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=names.queue(row.name),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(row.visibility_timeout_seconds),
            retention_period=QUEUE_RETENTION,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=row.max_receive_count),
            removal_policy=QUEUE_REMOVAL,
        )


class QueueConsumer(Construct):
    """The row's consumer, reporting partial batch failures so one bad message is retried
    (and eventually dead-lettered) alone, with at most the row's ``max_concurrency``
    invocations at once. A ``planned`` row's mapping is created disabled."""

    def __init__(
        self, scope: Construct, construct_id: str, *, work: WorkQueue, platform: FunctionPlatform, names: c.Names
    ) -> None:
        super().__init__(scope, construct_id)
        row = work.row
        self.handler = LedgerFunction(
            self,
            "Consumer",
            spec=FunctionSpec(
                function_name=names.consumer_function(row.name),
                handler=f"{row.consumer}.handler",
                description=row.description,
                timeout=Duration.seconds(row.consumer_timeout_seconds),
                grants=row.grants,
            ),
            platform=platform,
        )
        self.handler.function.add_event_source(
            sources.SqsEventSource(
                work.queue,
                batch_size=row.batch_size,
                report_batch_item_failures=True,
                # A cap, not reserved concurrency: messages wait in the queue instead of being
                # throttled (which would count towards their receive count and dead-letter them).
                max_concurrency=row.max_concurrency,
                enabled=not row.planned,
            )
        )
