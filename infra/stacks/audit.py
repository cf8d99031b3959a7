from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra import constants as c
from infra.components.audit import AuditBucket, AuditQueries
from infra.components.keys import ENVELOPE, KeyPolicy, symmetric_key, via_service
from infra.settings import InfraSettings
from infra.stacks.security import SecurityStack


class AuditStack(Stack):
    """The Object Lock audit bucket and its own KMS key, its Glue table, the Athena
    workgroup and the auditor role. Retained: locked objects outlive any stack."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: c.Names,
        security: SecurityStack,
        settings: InfraSettings,
    ) -> None:
        super().__init__(scope, construct_id, description="Ledgerline audit trail: S3 Object Lock, Glue, Athena")
        self.key = self._key(names)
        storage = AuditBucket(
            self,
            "Storage",
            key=self.key,
            retention_days=settings.audit_retention_days,
            bucket_name=names.audit_bucket(),
        )
        self.bucket = storage.bucket
        self.queries = AuditQueries(
            self,
            "Queries",
            bucket=storage.bucket,
            access_logs=storage.access_logs,
            key=self.key,
            checkpoint_key=security.keys.audit_checkpoint,
            names=names,
            bytes_scanned_cutoff=settings.athena_bytes_scanned_cutoff,
        )
        CfnOutput(self, "AuditBucketName", value=self.bucket.bucket_name)
        CfnOutput(self, "AthenaWorkGroup", value=names.workgroup())
        CfnOutput(self, "AuditorRoleArn", value=self.queries.auditor_role.role_arn)

    def _key(self, names: c.Names) -> kms.Key:
        # The audit trail's own key (not the database's): audit objects and query results,
        # usable only through S3, by the audit shipper and readers, auditors and operators.
        s3 = via_service("s3")
        policy = (
            KeyPolicy(names)
            .for_grant("AuditShipperWrites", ENVELOPE, "s3:audit-write", via=s3)
            .for_grant("AuditReadersRead", ["kms:Decrypt"], "s3:audit-read", via=s3)
            .for_role("AuditorsQuery", ENVELOPE, names.auditor_role(), via=s3)
            .for_operators("OperatorsVerifyTheTrail", ["kms:Decrypt"], via=s3)
        )
        return symmetric_key(
            self,
            "StorageKey",
            alias=names.key_alias(c.AUDIT_BUCKET_KEY),
            description="Audit trail objects and the auditors' query results",
            policy=policy.document,
        )
