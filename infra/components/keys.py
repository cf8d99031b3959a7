"""Customer-managed KMS keys."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.constants import Names


def symmetric_key(scope: Construct, construct_id: str, *, alias: str, description: str) -> kms.Key:
    return kms.Key(
        scope,
        construct_id,
        alias=alias,
        description=description,
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.RETAIN,
    )


class Keys(Construct):
    """``jwt``: RS256 access-token signing. ``field``: envelope encryption of sensitive
    columns. ``audit_checkpoint``: signs the audit chain head so auditors can verify it
    with the public key alone. ``secrets``: the application secrets.

    The data key (Aurora, database secrets, audit buckets) lives in the data stack: the
    RDS Proxy's grant on it edits the key policy, which must stay in the proxy's stack."""

    def __init__(self, scope: Construct, construct_id: str, *, names: Names) -> None:
        super().__init__(scope, construct_id)
        self._names = names
        self.secrets = self._symmetric("Secrets", "secrets", "Application secrets (gateways, blind index)")
        self.field = self._symmetric("Field", "field", "Field-level envelope encryption of sensitive data")
        self.jwt = self._asymmetric("Jwt", "jwt", kms.KeySpec.RSA_2048, "Signs RS256 access tokens")
        # RSA like the local stand-in (ledgerline.local.aws.KEY_SPECS): one signing algorithm everywhere.
        self.audit_checkpoint = self._asymmetric(
            "AuditCheckpoint", "audit", kms.KeySpec.RSA_2048, "Signs audit-chain checkpoints"
        )

    def _symmetric(self, construct_id: str, purpose: str, description: str) -> kms.Key:
        return symmetric_key(self, construct_id, alias=self._names.key_alias(purpose), description=description)

    def _asymmetric(self, construct_id: str, purpose: str, spec: kms.KeySpec, description: str) -> kms.Key:
        # Asymmetric keys cannot rotate automatically; a new key behind the alias
        # rotates them, and the JWKS serves old and new public halves meanwhile.
        return kms.Key(
            self,
            construct_id,
            alias=self._names.key_alias(purpose),
            description=description,
            key_spec=spec,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            removal_policy=RemovalPolicy.RETAIN,
        )
