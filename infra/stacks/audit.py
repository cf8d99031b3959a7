from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.components.audit import AuditBucket, AuditQueries
from infra.constants import Names
from infra.settings import InfraSettings
from infra.stacks.data import DataStack
from infra.stacks.security import SecurityStack


class AuditStack(Stack):
    """The Object Lock audit bucket, its Glue table, the Athena workgroup and the
    auditor role. Retained: locked objects outlive any stack."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        security: SecurityStack,
        data: DataStack,
        settings: InfraSettings,
    ) -> None:
        super().__init__(scope, construct_id, description="Ledgerline audit trail: S3 Object Lock, Glue, Athena")
        storage = AuditBucket(
            self,
            "Storage",
            key=data.key,
            retention_days=settings.audit_retention_days,
            bucket_name=names.audit_bucket(),
        )
        self.bucket = storage.bucket
        self.queries = AuditQueries(
            self,
            "Queries",
            bucket=storage.bucket,
            access_logs=storage.access_logs,
            key=data.key,
            checkpoint_key=security.keys.audit_checkpoint,
            names=names,
            bytes_scanned_cutoff=settings.athena_bytes_scanned_cutoff,
        )
        CfnOutput(self, "AuditBucketName", value=self.bucket.bucket_name)
        CfnOutput(self, "AthenaWorkGroup", value=names.workgroup())
        CfnOutput(self, "AuditorRoleArn", value=self.queries.auditor_role.role_arn)
