"""Route/job ``grants`` (``ledgerline.routes.GRANTS``) → precise IAM statements and env vars.

Every statement names exact actions on one resource ARN; nothing here produces a
wildcard action. The database grant every function gets is ``database_statements``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as sm
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants as c

SQS_PREFIX = "sqs:"
# The audit bucket's key is named by its alias, like the bucket by its name: any key of
# the account, as long as it carries that alias and S3 is the one calling.
AUDIT_KEY_FINDING = "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*]"
AUDIT_KEY_REASON = (
    "The audit bucket's key, named by its alias (kms:ResourceAliases) and used only through S3 "
    "(kms:ViaService): the audit stack owns it, and this stack may not refer to that stack."
)


@dataclass(frozen=True)
class GrantEffect:
    statements: tuple[iam.PolicyStatement, ...]
    environment: Mapping[str, str] = field(default_factory=dict)
    # cdk-nag finding → why it is acceptable (object-prefix resources such as audit/*)
    acknowledgments: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GrantTargets:
    """The resources grants point at; ``queues`` by QUEUES row name."""

    jwt_key: kms.IKey
    field_key: kms.IKey
    audit_key: kms.IKey
    secrets_key: kms.IKey  # encrypts the gateway and blind-index secrets
    audit_bucket: s3.IBucket
    gateway_secret: sm.ISecret
    blind_index_secret: sm.ISecret
    queues: Mapping[str, sqs.IQueue]
    email_from: str | None = None  # the verified SES identity that sends e-mail (context emailFrom)


class GrantCatalog:
    """Resolves grant names against one stack's view of the resources."""

    def __init__(self, scope: Construct, targets: GrantTargets, *, audit_bucket_name: str) -> None:
        self._region = Stack.of(scope).region
        self._audit_bucket_name = audit_bucket_name
        self._audit_bucket_key_alias = c.Names.of_audit_bucket(audit_bucket_name).key_alias(c.AUDIT_BUCKET_KEY)
        self._t = targets
        self._fixed: dict[str, Callable[[], GrantEffect]] = {
            "kms:jwt-sign": self._jwt_sign,
            "kms:jwt-verify": self._jwt_verify,
            "kms:field": self._field,
            "kms:audit-checkpoint": self._audit_checkpoint,
            "s3:audit-write": self._audit_write,
            "s3:audit-read": self._audit_read,
            "s3:evidence-write": self._evidence_write,
            "s3:evidence-read": self._evidence_read,
            "secret:gateways": lambda: self._secret(self._t.gateway_secret, c.ENV_GATEWAY_SECRET_ARN),
            "secret:blind-index": lambda: self._secret(self._t.blind_index_secret, c.ENV_BLIND_INDEX_SECRET_ARN),
            "ses:send": self._send_email,
        }

    def known(self) -> frozenset[str]:
        return frozenset(self._fixed) | {SQS_PREFIX + name for name in self._t.queues}

    def resolve(self, grant: str, owner: str) -> GrantEffect:
        if grant in self._fixed:
            return self._fixed[grant]()
        if grant.startswith(SQS_PREFIX) and grant[len(SQS_PREFIX) :] in self._t.queues:
            return self._send(grant[len(SQS_PREFIX) :])
        raise ValueError(
            f"{owner} asks for grant {grant!r}, which the CDK app cannot map to a resource; "
            f"known grants: {', '.join(sorted(self.known()))} (queues come from ledgerline.jobs.QUEUES)"
        )

    def _jwt_sign(self) -> GrantEffect:
        key = self._t.jwt_key
        return GrantEffect(
            (_allow(["kms:Sign", "kms:GetPublicKey", "kms:DescribeKey"], key.key_arn),),
            {c.ENV_JWT_KEY_ID: key.key_arn},
        )

    def _jwt_verify(self) -> GrantEffect:
        key = self._t.jwt_key
        return GrantEffect(
            (_allow(["kms:GetPublicKey", "kms:DescribeKey"], key.key_arn),), {c.ENV_JWT_KEY_ID: key.key_arn}
        )

    def _field(self) -> GrantEffect:
        key = self._t.field_key
        return GrantEffect(
            (_allow(["kms:GenerateDataKey", "kms:Decrypt"], key.key_arn),), {c.ENV_FIELD_KEY_ID: key.key_arn}
        )

    def _audit_checkpoint(self) -> GrantEffect:
        key = self._t.audit_key
        return GrantEffect(
            (_allow(["kms:Sign", "kms:Verify", "kms:GetPublicKey"], key.key_arn),),
            {c.ENV_AUDIT_KEY_ID: key.key_arn},
        )

    def _audit_write(self) -> GrantEffect:
        bucket = self._t.audit_bucket
        return GrantEffect(
            (
                _allow(["s3:PutObject"], bucket.arn_for_objects(c.AUDIT_PREFIX + "*")),
                self._via_s3(["kms:GenerateDataKey", "kms:Decrypt"]),
            ),
            {c.ENV_AUDIT_BUCKET: bucket.bucket_name},
            {
                self._audit_objects_finding(): "New audit batches get new keys under the audit/ prefix.",
                AUDIT_KEY_FINDING: AUDIT_KEY_REASON,
            },
        )

    def _audit_read(self) -> GrantEffect:
        bucket = self._t.audit_bucket
        return GrantEffect(
            (
                _allow(["s3:GetObject", "s3:GetObjectVersion"], bucket.arn_for_objects(c.AUDIT_PREFIX + "*")),
                _allow(["s3:ListBucket"], bucket.bucket_arn),
                self._via_s3(["kms:Decrypt"]),
            ),
            {c.ENV_AUDIT_BUCKET: bucket.bucket_name},
            {
                self._audit_objects_finding(): "Reads any audit batch under the audit/ prefix, read-only.",
                AUDIT_KEY_FINDING: AUDIT_KEY_REASON,
            },
        )

    def _evidence_write(self) -> GrantEffect:
        # Presigning a POST needs no call to S3, but the upload is authorized as this role.
        return self._evidence(["s3:PutObject"], ["kms:GenerateDataKey", "kms:Decrypt"], "Uploads get new keys")

    def _evidence_read(self) -> GrantEffect:
        # A confirmed document is one version (a download link names it). ListBucket: without
        # it S3 answers a key not uploaded yet with 403, not 404 (confirm's "nothing yet").
        return self._evidence(
            ["s3:GetObject", "s3:GetObjectVersion"], ["kms:Decrypt"], "Reads any upload", list_bucket=True
        )

    def _evidence(
        self, actions: list[str], key_actions: list[str], why: str, *, list_bucket: bool = False
    ) -> GrantEffect:
        names = c.Names.of_audit_bucket(self._audit_bucket_name)
        bucket = names.evidence_bucket()
        objects = f"arn:{Aws.PARTITION}:s3:::{bucket}/{c.EVIDENCE_PREFIX}*"
        shown = bucket.replace(Aws.ACCOUNT_ID, "<AWS::AccountId>").replace(Aws.REGION, "<AWS::Region>")
        listing = (_allow(["s3:ListBucket"], f"arn:{Aws.PARTITION}:s3:::{bucket}"),) if list_bucket else ()
        return GrantEffect(
            (_allow(actions, objects), *listing, self._via_s3(key_actions, names.key_alias(c.EVIDENCE_BUCKET_KEY))),
            {c.ENV_EVIDENCE_BUCKET: bucket},
            {
                f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{shown}/{c.EVIDENCE_PREFIX}*]": (
                    f"{why} under the evidence/ prefix, chosen by the server per piece of evidence."
                ),
                AUDIT_KEY_FINDING: "The evidence bucket's key, named by its alias (kms:ResourceAliases) and used "
                "only through S3 (kms:ViaService): the data stack owns it.",
            },
        )

    def _audit_objects_finding(self) -> str:
        # The bucket name is fixed (constants.Names.audit_bucket), so cdk-nag renders it alike in every stack.
        name = self._audit_bucket_name.replace(Aws.ACCOUNT_ID, "<AWS::AccountId>").replace(Aws.REGION, "<AWS::Region>")
        return f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{name}/{c.AUDIT_PREFIX}*]"

    def _secret(self, secret: sm.ISecret, env: str) -> GrantEffect:
        statements = secret_read_statements(secret, self._t.secrets_key, self._region)
        return GrantEffect(statements, {env: secret.secret_arn})

    def _send_email(self) -> GrantEffect:
        sender = self._t.email_from
        if not sender:
            # Nothing to scope a permission to: the code refuses to send (EmailNotConfigured)
            # and says which variable is missing, so the gap shows on the first attempt.
            return GrantEffect(())
        domain = sender.rpartition("@")[2]
        # SES authorizes against the verified identity: the address, or its whole domain.
        identities = [self._ses_identity(sender), self._ses_identity(domain)]
        statement = iam.PolicyStatement(actions=["ses:SendEmail"], resources=identities)
        statement.add_condition("StringEquals", {"ses:FromAddress": sender})
        return GrantEffect((statement,), {c.ENV_EMAIL_FROM: sender})

    def _ses_identity(self, identity: str) -> str:
        return f"arn:{Aws.PARTITION}:ses:{self._region}:{Aws.ACCOUNT_ID}:identity/{identity}"

    def _send(self, queue_name: str) -> GrantEffect:
        queue = self._t.queues[queue_name]
        statements = [_allow(["sqs:SendMessage", "sqs:GetQueueAttributes"], queue.queue_arn)]
        if queue.encryption_master_key is not None:
            statements.append(_allow(["kms:GenerateDataKey", "kms:Decrypt"], queue.encryption_master_key.key_arn))
        return GrantEffect(tuple(statements), {c.queue_url_env(queue_name): queue.queue_url})

    def _via_s3(self, actions: list[str], alias: str | None = None) -> iam.PolicyStatement:
        keys = f"arn:{Aws.PARTITION}:kms:{self._region}:{Aws.ACCOUNT_ID}:key/*"
        statement = _allow(actions, keys)
        statement.add_condition("StringEquals", {"kms:ViaService": f"s3.{self._region}.amazonaws.com"})
        statement.add_condition(
            "ForAnyValue:StringEquals", {"kms:ResourceAliases": alias or self._audit_bucket_key_alias}
        )
        return statement


def secret_read_statements(secret: sm.ISecret, key: kms.IKey, region: str) -> tuple[iam.PolicyStatement, ...]:
    """Read one secret; its KMS key only through Secrets Manager."""
    decrypt = _allow(["kms:Decrypt"], key.key_arn)
    decrypt.add_condition("StringEquals", {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"})
    return (_allow(["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], secret.secret_arn), decrypt)


def _allow(actions: list[str], resource: str) -> iam.PolicyStatement:
    return iam.PolicyStatement(effect=iam.Effect.ALLOW, actions=actions, resources=[resource])
