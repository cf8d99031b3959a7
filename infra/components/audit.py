"""The audit trail in S3 (Object Lock, COMPLIANCE), its Glue table and the Athena workgroup."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import constants as c
from infra.nag import acknowledge

JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"


class AuditBucket(Construct):
    """Write-once storage: versioned, Object Lock in COMPLIANCE mode (nobody, not even the
    root user, can shorten the retention or delete a locked version), SSE-KMS, TLS only,
    and a bucket policy that denies object deletion outright."""

    def __init__(
        self, scope: Construct, construct_id: str, *, key: kms.IKey, retention_days: int, bucket_name: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = self._access_logs(retention_days)
        self.bucket = self._bucket(key, retention_days, bucket_name)
        self._deny_deletes()

    def _access_logs(self, retention_days: int) -> s3.Bucket:
        return access_log_bucket(self, retention_days)

    def _bucket(self, key: kms.IKey, retention_days: int, bucket_name: str) -> s3.Bucket:
        return s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            versioned=True,
            object_lock_enabled=True,
            object_lock_default_retention=s3.ObjectLockRetention.compliance(Duration.days(retention_days)),
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="audit-bucket/",
            # Kept when the stack is deleted (locked objects outlive it anyway); deleted, empty,
            # when the first create rolls back, so that the retry can take the same fixed name.
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )

    def _deny_deletes(self) -> None:
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyDeletingAuditObjects",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:DeleteObject", "s3:DeleteObjectVersion"],
                resources=[self.bucket.arn_for_objects("*")],
            )
        )


class AuditQueries(Construct):
    """Glue table (JSON lines, partitioned by ``dt`` with partition projection, so no
    crawler and no partition maintenance), an Athena workgroup with encrypted results
    and a scan cutoff, and the role auditors assume to query it and nothing else."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        access_logs: s3.IBucket,
        key: kms.IKey,
        checkpoint_key: kms.IKey,
        names: c.Names,
        bytes_scanned_cutoff: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self._names = names
        self._bucket = bucket
        self.database = self._database()
        self.table = self._table()
        self.results = self._results(key, access_logs)
        self.workgroup = self._workgroup(key, bytes_scanned_cutoff)
        self.auditor_role = self._auditor_role(key, checkpoint_key)

    def _database(self) -> glue.CfnDatabase:
        return glue.CfnDatabase(
            self,
            "Database",
            catalog_id=Stack.of(self).account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self._names.glue_database(), description="Ledgerline audit trail"
            ),
        )

    def _table(self) -> glue.CfnTable:
        location = f"s3://{self._bucket.bucket_name}/{c.AUDIT_PREFIX}"
        table = glue.CfnTable(
            self,
            "Table",
            catalog_id=Stack.of(self).account,
            database_name=self._names.glue_database(),
            table_input=glue.CfnTable.TableInputProperty(
                name=self._names.glue_table(),
                description="Audit rows shipped by the audit shipper, one JSON object per line",
                table_type="EXTERNAL_TABLE",
                partition_keys=[glue.CfnTable.ColumnProperty(name="dt", type="string")],
                parameters={
                    "EXTERNAL": "TRUE",
                    "classification": "json",
                    "projection.enabled": "true",
                    "projection.dt.type": "date",
                    "projection.dt.format": "yyyy-MM-dd",
                    "projection.dt.range": f"{c.AUDIT_PROJECTION_START},NOW",
                    "projection.dt.interval": "1",
                    "projection.dt.interval.unit": "DAYS",
                    "storage.location.template": location + "dt=${dt}/",
                },
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    columns=[glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in c.AUDIT_COLUMNS],
                    input_format="org.apache.hadoop.mapred.TextInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library=JSON_SERDE, parameters={"ignore.malformed.json": "false"}
                    ),
                ),
            ),
        )
        table.node.add_dependency(self.database)
        return table

    def _results(self, key: kms.IKey, access_logs: s3.IBucket) -> s3.Bucket:
        return s3.Bucket(
            self,
            "Results",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=c.ATHENA_RESULTS_EXPIRY)],
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="athena-results/",
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )

    def _workgroup(self, key: kms.IKey, bytes_scanned_cutoff: int) -> athena.CfnWorkGroup:
        return athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=self._names.workgroup(),
            description="Auditors' queries over the audit trail",
            state="ENABLED",
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=bytes_scanned_cutoff,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{self.results.bucket_name}/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=key.key_arn
                    ),
                ),
            ),
        )

    def _auditor_role(self, key: kms.IKey, checkpoint_key: kms.IKey) -> iam.Role:
        stack = Stack.of(self)
        glue_arn = f"arn:{stack.partition}:glue:{stack.region}:{stack.account}"
        database = self._names.glue_database()
        workgroup_arn = (
            f"arn:{stack.partition}:athena:{stack.region}:{stack.account}:workgroup/{self._names.workgroup()}"
        )
        statements = [
            iam.PolicyStatement(
                sid="QueryInTheAuditWorkgroup",
                actions=[
                    "athena:StartQueryExecution",
                    "athena:StopQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:GetQueryRuntimeStatistics",
                    "athena:BatchGetQueryExecution",
                    "athena:ListQueryExecutions",
                    "athena:GetWorkGroup",
                ],
                resources=[workgroup_arn],
            ),
            iam.PolicyStatement(
                sid="ReadTheAuditTableDefinition",
                actions=[
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:GetTables",
                    "glue:GetPartition",
                    "glue:GetPartitions",
                ],
                resources=[
                    f"{glue_arn}:catalog",
                    f"{glue_arn}:database/{database}",
                    f"{glue_arn}:table/{database}/{self._names.glue_table()}",
                ],
            ),
            iam.PolicyStatement(
                sid="ReadAuditObjects",
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[self._bucket.arn_for_objects(c.AUDIT_PREFIX + "*")],
            ),
            iam.PolicyStatement(
                # `ledgerline audit verify` reads every version: an overwrite or a delete
                # marker is itself evidence, and only the version list shows it.
                sid="ListAuditObjectVersions",
                actions=["s3:ListBucketVersions"],
                resources=[self._bucket.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="ListBuckets",
                actions=["s3:ListBucket", "s3:GetBucketLocation"],
                resources=[self._bucket.bucket_arn, self.results.bucket_arn],
            ),
            iam.PolicyStatement(
                sid="WriteQueryResults",
                actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                resources=[self.results.arn_for_objects("*")],
            ),
            iam.PolicyStatement(
                sid="DecryptAuditAndResults", actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[key.key_arn]
            ),
            iam.PolicyStatement(
                sid="VerifyCheckpoints", actions=["kms:GetPublicKey", "kms:Verify"], resources=[checkpoint_key.key_arn]
            ),
        ]
        role = iam.Role(
            self,
            "AuditorRole",
            role_name=self._names.auditor_role(),
            description="Auditors: query the audit trail with Athena; nothing else",
            assumed_by=self._auditors(),
            max_session_duration=Duration.hours(4),
            inline_policies={"AuditQueries": iam.PolicyDocument(statements=statements)},
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{self._logical_id(self._bucket)}.Arn>/{c.AUDIT_PREFIX}*]",
            "Read-only access to the audit objects under their prefix; the keys are unknown in advance.",
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{self._logical_id(self.results)}.Arn>/*]",
            "Athena writes each query's results under a fresh key in the dedicated results bucket.",
        )
        return role

    def _auditors(self) -> iam.IPrincipal:
        # Not "anyone of the account with MFA": only the users or roles an IAM administrator
        # tagged as auditors (README, "Auditors"), signed in with MFA within the last hour.
        return iam.AccountRootPrincipal().with_conditions(
            {
                "Bool": {"aws:MultiFactorAuthPresent": "true"},
                "NumericLessThanEquals": {"aws:MultiFactorAuthAge": str(c.AUDITOR_MFA_MAX_AGE.to_seconds())},
                "StringEquals": {f"aws:PrincipalTag/{self._names.principal_tag('auditor')}": "true"},
            }
        )

    @staticmethod
    def _logical_id(bucket: s3.IBucket) -> str:
        stack = Stack.of(bucket)
        return stack.resolve(stack.get_logical_id(bucket.node.default_child))  # type: ignore[arg-type]


def access_log_bucket(scope: Construct, retention_days: int) -> s3.Bucket:
    """A private bucket for a bucket's S3 server access logs ("AccessLogs" in ``scope``),
    kept ``retention_days``."""
    return s3.Bucket(
        scope,
        "AccessLogs",
        encryption=s3.BucketEncryption.S3_MANAGED,  # S3 server access logging cannot write SSE-KMS
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(retention_days))],
        removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    )
