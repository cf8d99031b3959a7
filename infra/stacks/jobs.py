from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants as c
from infra.assets import AssetPaths
from infra.components.functions import FunctionPlatform
from infra.components.grants import GrantCatalog, GrantTargets
from infra.components.queues import QueueConsumer, WorkQueue, dead_letter_queue
from infra.components.schedules import ScheduledJob
from infra.nag import acknowledge
from infra.stacks.data import DataStack
from infra.stacks.network import NetworkStack
from infra.stacks.security import SecurityStack
from ledgerline.jobs import Queue, Schedule


class JobsStack(Stack):
    """Queues (each with a DLQ), their consumers, and the scheduled jobs (with one DLQ for
    the runs that could not be delivered or failed)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        queues: Sequence[Queue],
        schedules: Sequence[Schedule],
        names: c.Names,
        network: NetworkStack,
        security: SecurityStack,
        data: DataStack,
        environment: Mapping[str, str],
        assets: AssetPaths,
        email_from: str | None,
    ) -> None:
        super().__init__(scope, construct_id, description="Ledgerline async work: SQS queues, consumers, schedules")
        self.work_queues = {row.name: WorkQueue(self, c.pascal(row.name), row=row, names=names) for row in queues}
        targets = GrantTargets(
            jwt_key=security.keys.jwt,
            field_key=security.keys.field,
            audit_key=security.keys.audit_checkpoint,
            secrets_key=security.keys.secrets,
            audit_bucket=s3.Bucket.from_bucket_name(self, "AuditBucket", names.audit_bucket()),
            email_from=email_from,
            gateway_secret=security.secrets.gateways,
            blind_index_secret=security.secrets.blind_index,
            queues={name: work.queue for name, work in self.work_queues.items()},
        )
        platform = FunctionPlatform(
            vpc=network.vpc,
            security_group=network.app_security_group,
            assets=assets,
            database=data.access,
            environment=environment,
            grants=GrantCatalog(self, targets, audit_bucket_name=names.audit_bucket()),
        )
        self.consumers = {
            name: QueueConsumer(self, f"{c.pascal(name)}Consumer", work=work, platform=platform, names=names)
            for name, work in self.work_queues.items()
        }
        self.jobs_dlq = self._jobs_dlq(names)
        self.jobs = {
            row.name: ScheduledJob(
                self, f"{c.pascal(row.name)}Job", row=row, platform=platform, names=names, dead_letters=self.jobs_dlq
            )
            for row in schedules
        }
        for name, work in self.work_queues.items():
            CfnOutput(self, f"{c.pascal(name)}QueueUrl", value=work.queue.queue_url)

    def _jobs_dlq(self, names: c.Names) -> sqs.Queue:
        queue = dead_letter_queue(self, "JobsDlq", queue_name=names.jobs_dlq())
        acknowledge(
            queue,
            "AwsSolutions-SQS3",
            "This is itself a dead-letter queue: of the scheduled jobs' EventBridge targets and of their "
            "asynchronous invocations (on-failure destination); its depth is alarmed.",
        )
        return queue
