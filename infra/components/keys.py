"""Customer-managed KMS keys, and key policies that say who may use each key.

A key created with CDK's default policy lets the account's IAM decide everything
(``kms:*`` for the account root): any administrator could sign access tokens or decrypt
field data with a policy of their own. Here the account keeps the *administration* of a
key (so it stays manageable, and CloudFormation can update it), while each *usage*
action is allowed only to principals named by ARN pattern and tag:

* function roles: every Ledgerline function role lives under the IAM path
  ``/<prefix>/`` and carries one tag per grant of its table row
  (``ledgerline-kms-jwt-sign: true``, ``infra.components.functions``), and a key admits
  ``aws:PrincipalArn`` like ``role/<prefix>/*`` with that tag. The roles themselves live
  in the API and jobs stacks, deployed after this one: naming them in the key policies
  would make this stack depend on those (a cycle), so the policy names them by pattern
  and each role's own policy (its grants) names the key. Both must allow a call.
* people: the auditor role by its fixed name; operators by the principal tag
  ``<prefix>-operator: true`` that an IAM administrator gives them (README).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra import constants as c

# What the account (its IAM administrators, CloudFormation) may do with every key: manage
# it, never use it. No kms:CreateGrant: a grant is usage handed on.
ADMIN_ACTIONS = (
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:PutKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:EnableKeyRotation",
    "kms:DisableKeyRotation",
    "kms:RotateKeyOnDemand",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:EnableKey",
    "kms:DisableKey",
    "kms:UpdateKeyDescription",
    "kms:CreateAlias",
    "kms:UpdateAlias",
    "kms:DeleteAlias",
    "kms:ListGrants",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
)
SIGN = ("kms:Sign", "kms:GetPublicKey")
VERIFY = ("kms:Verify", "kms:GetPublicKey")
ENVELOPE = ("kms:GenerateDataKey", "kms:Decrypt")
# Secrets Manager encrypts with the caller's rights; these never leave Secrets Manager.
SECRETS_MANAGER_USE = ("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:ReEncryptTo")


class KeyPolicy:
    """Builds one key's policy: administration for the account, usage by name only."""

    def __init__(self, names: c.Names) -> None:
        self._names = names
        self.document = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    sid="AccountAdministersTheKey",
                    principals=[iam.AccountRootPrincipal()],
                    actions=list(ADMIN_ACTIONS),
                    resources=["*"],
                )
            ]
        )

    def for_grant(self, sid: str, actions: Sequence[str], grant: str, *, via: str | None = None) -> KeyPolicy:
        """Function roles of this copy that hold ``grant``."""
        conditions: dict[str, dict[str, object]] = {
            "ArnLike": {"aws:PrincipalArn": self._names.function_roles_arn()},
            "StringEquals": {f"aws:PrincipalTag/{c.grant_tag(grant)}": "true"},
        }
        return self._allow(sid, actions, conditions, via)

    def for_operators(self, sid: str, actions: Sequence[str], *, via: str | None = None) -> KeyPolicy:
        """People an IAM administrator tagged ``<prefix>-operator: true``."""
        conditions: dict[str, dict[str, object]] = {
            "StringEquals": {f"aws:PrincipalTag/{self._names.principal_tag('operator')}": "true"}
        }
        return self._allow(sid, actions, conditions, via)

    def for_role(self, sid: str, actions: Sequence[str], role_name: str, *, via: str | None = None) -> KeyPolicy:
        """One role of this account, by its fixed name (it may not exist yet)."""
        arn = f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{role_name}"
        return self._allow(sid, actions, {"ArnEquals": {"aws:PrincipalArn": arn}}, via)

    def through(self, sid: str, actions: Sequence[str], via: str) -> KeyPolicy:
        """Any principal the account's IAM allows, but only through one AWS service."""
        return self._allow(sid, actions, {}, via)

    def _allow(
        self, sid: str, actions: Sequence[str], conditions: dict[str, dict[str, object]], via: str | None
    ) -> KeyPolicy:
        if via:
            conditions = {**conditions, "StringEquals": {**conditions.get("StringEquals", {}), "kms:ViaService": via}}
        self.document.add_statements(
            iam.PolicyStatement(
                sid=sid,
                principals=[iam.AccountRootPrincipal()],
                actions=list(actions),
                resources=["*"],
                conditions=conditions,
            )
        )
        return self


def via_service(service: str) -> str:
    return f"{service}.{Aws.REGION}.amazonaws.com"


def symmetric_key(
    scope: Construct, construct_id: str, *, alias: str, description: str, policy: iam.PolicyDocument | None = None
) -> kms.Key:
    return kms.Key(
        scope,
        construct_id,
        alias=alias,
        description=description,
        enable_key_rotation=True,
        policy=policy,
        # Kept when the stack is deleted or the key replaced (data stays readable); deleted
        # when the stack's first create rolls back, so a retry starts clean.
        removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    )


class Keys(Construct):
    """``jwt``: RS256 access-token signing. ``field``: envelope encryption of sensitive
    columns. ``audit_checkpoint``: signs the audit chain head so auditors can verify it
    with the public key alone. ``secrets``: the application secrets.

    The data key (Aurora, database secrets) lives in the data stack: the RDS Proxy's
    grant on it edits the key policy, which must stay in the proxy's stack."""

    def __init__(self, scope: Construct, construct_id: str, *, names: c.Names) -> None:
        super().__init__(scope, construct_id)
        self._names = names
        self.secrets = self._symmetric(
            "Secrets",
            "secrets",
            "Application secrets (gateways, blind index)",
            # Who reads which secret is said by the secrets' resource policies
            # (infra.components.secrets); the key is usable through Secrets Manager only.
            KeyPolicy(names).through(
                "UseThroughSecretsManagerOnly", SECRETS_MANAGER_USE, via_service("secretsmanager")
            ),
        )
        self.field = self._symmetric(
            "Field",
            "field",
            "Field-level envelope encryption of sensitive data",
            KeyPolicy(names)
            .for_grant("FunctionsWithTheFieldGrant", ENVELOPE, "kms:field")
            .for_operators("OperatorsCreatingUsers", ENVELOPE),
        )
        self.jwt = self._asymmetric(
            "Jwt",
            "jwt",
            kms.KeySpec.RSA_2048,
            "Signs RS256 access tokens",
            KeyPolicy(names)
            .for_grant("FunctionsThatSignTokens", SIGN, "kms:jwt-sign")
            .for_grant("FunctionsThatVerifyTokens", VERIFY, "kms:jwt-verify"),
        )
        # RSA like the local stand-in (ledgerline.local.aws.KEY_SPECS): one signing algorithm everywhere.
        self.audit_checkpoint = self._asymmetric(
            "AuditCheckpoint",
            "audit",
            kms.KeySpec.RSA_2048,
            "Signs audit-chain checkpoints",
            KeyPolicy(names)
            .for_grant("FunctionsThatSignCheckpoints", (*SIGN, "kms:Verify"), "kms:audit-checkpoint")
            .for_role("AuditorsVerifyCheckpoints", VERIFY, names.auditor_role())
            .for_operators("OperatorsVerifyCheckpoints", VERIFY),
        )

    def _symmetric(self, construct_id: str, purpose: str, description: str, policy: KeyPolicy) -> kms.Key:
        return symmetric_key(
            self,
            construct_id,
            alias=self._names.key_alias(purpose),
            description=description,
            policy=policy.document,
        )

    def _asymmetric(
        self, construct_id: str, purpose: str, spec: kms.KeySpec, description: str, policy: KeyPolicy
    ) -> kms.Key:
        # Asymmetric keys cannot rotate automatically; a new key behind the alias
        # rotates them, and the JWKS serves old and new public halves meanwhile.
        return kms.Key(
            self,
            construct_id,
            alias=self._names.key_alias(purpose),
            description=description,
            key_spec=spec,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            policy=policy.document,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
