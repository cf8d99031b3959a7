"""Every name, environment variable and fixed number of the CDK app, in one place."""

from __future__ import annotations

import re

from aws_cdk import Aws, Duration
from aws_cdk import aws_logs as logs

from ledgerline import metric_names
from ledgerline.audit_sql import schema as audit_schema

APP_NAME = "ledgerline"
POWERTOOLS_SERVICE = "ledgerline"
METRICS_NAMESPACE = "Ledgerline"
DB_NAME = "ledgerline"
# Not ledgerline_owner: migrations make the master a member of that NOLOGIN owner role.
DB_MASTER_USER = "ledgerline_master"
DB_APP_USER = "ledgerline_app"
DB_PORT = 5432

# Stack ids: one per lifecycle (see README, "Deploy to AWS", for what lives where).
NETWORK_STACK = "LedgerlineNetwork"
SECURITY_STACK = "LedgerlineSecurity"
DATA_STACK = "LedgerlineData"
AUDIT_STACK = "LedgerlineAudit"
JOBS_STACK = "LedgerlineJobs"
API_STACK = "LedgerlineApi"
OBSERVABILITY_STACK = "LedgerlineObservability"

# Lambda
LAMBDA_MEMORY_MB = 512
API_TIMEOUT = Duration.seconds(15)  # HTTP API integrations give up after 30 s
MIGRATION_TIMEOUT = Duration.minutes(10)
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
JOB_RESERVED_CONCURRENCY = 1  # one run of a job at a time (the audit shipper must be single)
# EventBridge fires a rule somewhere within its minute, not on the second: a run must end
# this long before the next tick can come, or the tick finds it still running (a throttle).
JOB_START_JITTER = Duration.seconds(15)
JOB_RETRY_ATTEMPTS = 2  # Lambda's async maximum; only for jobs whose retries end before the next tick
# Lambda waits about 1 minute before the first async retry and 2 before the second.
JOB_RETRY_DELAYS = Duration.minutes(3)
FUNCTION_NAME_MAX = 64

# Data
AURORA_BACKUP_DAYS = 14
SECRET_ROTATION_DAYS = 30
SECRET_EXCLUDED_CHARS = " %+~`#$&*()|[]{}:;<>?!'/@\"\\"  # noqa: S105 - characters, not a secret
# RDS Proxy: a function waiting longer than this for a pooled connection gets an error it
# can report, well inside the API's 15 s timeout (the default, 120 s, outlives every caller).
PROXY_BORROW_TIMEOUT = Duration.seconds(5)

# Network: interface endpoints for the AWS APIs the functions call (ledgerline.aws: boto3
# clients secretsmanager, kms, sqs, sesv2, whose endpoint prefix is "email"; and X-Ray
# traces), so none of them depends on the NAT gateway. S3 has a gateway endpoint.
INTERFACE_ENDPOINTS: tuple[str, ...] = ("secretsmanager", "kms", "sqs", "email", "xray")
HTTPS_PORT = 443

# Audit trail objects: s3://<bucket>/audit/dt=YYYY-MM-DD/<batch>.jsonl
AUDIT_BUCKET_KEY = "audit-storage"  # alias/<prefix>-audit-storage: the audit bucket's and Athena results' key
AUDIT_PREFIX = "audit/"
AUDIT_PROJECTION_START = "2024-01-01"
ATHENA_RESULTS_EXPIRY = Duration.days(30)
# Dispute evidence: s3://<evidence bucket>/evidence/<escrow id>/<evidence id> (ledgerline.evidence)
EVIDENCE_BUCKET_KEY = "evidence-storage"  # alias/<prefix>-evidence-storage: the evidence bucket's key
EVIDENCE_PREFIX = "evidence/"
EVIDENCE_UPLOADS_ABORTED = Duration.days(1)  # unfinished multipart uploads
EVIDENCE_NONCURRENT_EXPIRY = Duration.days(90)  # a re-upload's replaced version, once the dispute is long decided
AUDITOR_MFA_MAX_AGE = Duration.hours(1)  # how long ago an auditor may have entered their MFA code
# The Glue table's columns: the shipper writes exactly these (one definition, in the layer).
AUDIT_COLUMNS = audit_schema.COLUMNS

# Metrics the application emits (powertools, default ``service`` dimension only).
METRIC_RECON_DISCREPANCIES = metric_names.RECONCILIATION_DISCREPANCIES
METRIC_LEDGER_IMBALANCE = metric_names.LEDGER_IMBALANCE
METRIC_PAYOUTS_OVERDUE = metric_names.PAYOUTS_OVERDUE

# Environment variables: the contract with ledgerline.config and ledgerline.aws.
ENV_ENVIRONMENT = "LEDGERLINE_ENV"
ENV_DB_HOST = "LEDGERLINE_DB_HOST"
ENV_DB_NAME = "LEDGERLINE_DB_NAME"
ENV_DB_USER = "LEDGERLINE_DB_USER"  # the login of route, job and consumer functions (DB_APP_USER)
ENV_DB_OWNER_USER = "LEDGERLINE_DB_OWNER_USER"  # the migration's login (DB_MASTER_USER)
ENV_DB_IAM_AUTH = "LEDGERLINE_DB_IAM_AUTH"  # "true": connect with an RDS IAM token, no password
# Only the migration: the application secret, whose password it sets on the application role
# (RDS Proxy logs in to Aurora with it; functions never see it).
ENV_DB_SECRET_ARN = "LEDGERLINE_DB_SECRET_ARN"  # noqa: S105 - a variable name
# No function holds the master secret any more (the migration logs in with IAM); tests
# assert that this variable stays absent.
ENV_DB_OWNER_SECRET_ARN = "LEDGERLINE_DB_OWNER_SECRET_ARN"  # noqa: S105 - a variable name
ENV_JWT_ISSUER = "LEDGERLINE_JWT_ISSUER"
ENV_JWT_AUDIENCE = "LEDGERLINE_JWT_AUDIENCE"
ENV_RESOURCE_PREFIX = "LEDGERLINE_RESOURCE_PREFIX"
ENV_JWT_KEY_ID = "LEDGERLINE_JWT_KEY_ID"
ENV_FIELD_KEY_ID = "LEDGERLINE_FIELD_KEY_ID"
ENV_AUDIT_KEY_ID = "LEDGERLINE_AUDIT_KEY_ID"
ENV_AUDIT_BUCKET = "LEDGERLINE_AUDIT_BUCKET"
ENV_EVIDENCE_BUCKET = "LEDGERLINE_EVIDENCE_BUCKET"
ENV_GATEWAY_SECRET_ARN = "LEDGERLINE_GATEWAY_SECRET_ARN"  # noqa: S105 - a variable name
ENV_EMAIL_FROM = "LEDGERLINE_EMAIL_FROM"
ENV_BLIND_INDEX_SECRET_ARN = "LEDGERLINE_BLIND_INDEX_SECRET_ARN"  # noqa: S105 - a variable name

# Build inputs
LAYER_DIR_ENV = "LEDGERLINE_LAYER_DIR"  # a ready layer folder (tests): skips pip install
# The SQL the migration custom resource applies (db/migrations/ and db/routines/): a change
# to any of it changes the resource's hash, so CloudFormation runs the migrator again.
MIGRATIONS_GLOB = "layers/common/python/ledgerline/db/*/*.sql"
MIGRATION_HANDLER = "functions.system.migrate.handler"


def queue_url_env(queue_name: str) -> str:
    """``notifications`` → ``LEDGERLINE_QUEUE_NOTIFICATIONS_URL``."""
    return f"LEDGERLINE_QUEUE_{_upper_snake(queue_name)}_URL"


def _upper_snake(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper()


def grant_tag(grant: str) -> str:
    """``kms:jwt-sign`` → ``ledgerline-kms-jwt-sign``: the tag a function role carries for
    each grant of its row, so that key policies can name the roles that hold a grant."""
    return f"{APP_NAME}-{re.sub(r'[^a-z0-9]+', '-', grant.lower()).strip('-')}"


def pascal(name: str) -> str:
    """``gateway-webhooks`` → ``GatewayWebhooks`` (construct ids)."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part)


class Names:
    """Physical names derived from the resource prefix, so that stacks (and alarms)
    can refer to each other's functions and queues without CloudFormation exports."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def route_function(self, route_name: str) -> str:
        return self._function(f"api-{route_name}")

    def job_function(self, schedule_name: str) -> str:
        return self._function(f"job-{schedule_name}")

    def consumer_function(self, queue_name: str) -> str:
        return self._function(f"consumer-{queue_name}")

    def migration_function(self) -> str:
        return self._function("db-migrate")

    def queue(self, queue_name: str) -> str:
        return f"{self.prefix}-{queue_name}"

    def jobs_dlq(self) -> str:
        # Where EventBridge and Lambda put the scheduled runs that could not be delivered or failed.
        return f"{self.prefix}-scheduled-jobs-dlq"

    def rule(self, schedule_name: str) -> str:
        return f"{self.prefix}-{schedule_name}"

    def role_path(self) -> str:
        # Every function role of this copy lives under this IAM path; key policies admit
        # usage only from roles whose ARN has it (``aws:PrincipalArn``).
        return f"/{self.prefix}/"

    def function_roles_arn(self) -> str:
        return f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role{self.role_path()}*"

    def auditor_role(self) -> str:
        return f"{self.prefix}-auditor"

    def principal_tag(self, duty: str) -> str:
        """``auditor`` → ``ledgerline-auditor``: the tag (value ``true``) an IAM administrator
        puts on the users or roles of people with that duty (README, "Auditors")."""
        return f"{self.prefix}-{duty}"

    def audit_bucket(self) -> str:
        # Fixed (account and region make it globally unique) so that grants on it read the
        # same in every stack, with no cross-stack reference.
        return f"{self.prefix}-audit-{Aws.ACCOUNT_ID}-{Aws.REGION}"

    def evidence_bucket(self) -> str:
        # Fixed like the audit bucket's, and the runtime's fallback (ledgerline.aws.evidence.bucket).
        return f"{self.prefix}-evidence-{Aws.ACCOUNT_ID}-{Aws.REGION}"

    @classmethod
    def of_audit_bucket(cls, bucket_name: str) -> Names:
        """The names of the copy whose audit bucket this is (the inverse of ``audit_bucket``)."""
        return cls(bucket_name.rpartition("-audit-")[0])

    def glue_database(self) -> str:
        return f"{self.prefix}_audit".replace("-", "_")

    def glue_table(self) -> str:
        return "audit_events"

    def workgroup(self) -> str:
        return f"{self.prefix}-audit"

    def key_alias(self, purpose: str) -> str:
        # The runtime falls back to these aliases (ledgerline.aws.resources.key_alias).
        return f"alias/{self.prefix}-{purpose}"

    def secret(self, purpose: str) -> str:
        return f"{self.prefix}/{purpose}"

    def _function(self, suffix: str) -> str:
        name = f"{self.prefix}-{suffix}"
        if len(name) > FUNCTION_NAME_MAX:
            raise ValueError(
                f"function name {name!r} has {len(name)} characters; Lambda allows {FUNCTION_NAME_MAX}. "
                "Use a shorter resource prefix (context resourcePrefix) or a shorter handler module name."
            )
        return name
