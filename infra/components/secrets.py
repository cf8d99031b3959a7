"""Application secrets that are not database credentials."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from infra.constants import Names
from infra.nag import acknowledge


class AppSecrets(Construct):
    """Gateway credentials (set by an operator after the first deploy) and the blind-index
    HMAC key (generated). No secret value ever appears in a template."""

    def __init__(self, scope: Construct, construct_id: str, *, names: Names, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.gateways = self._gateways(names, key)
        self.blind_index = self._blind_index(names, key)

    def _gateways(self, names: Names, key: kms.IKey) -> sm.Secret:
        secret = sm.Secret(
            self,
            "Gateways",
            secret_name=names.secret("gateways"),
            description="Payment gateway API and webhook secrets, JSON by provider; set after deploy",
            encryption_key=key,
            # A random placeholder: the provider-issued values are put in by an operator.
            generate_secret_string=sm.SecretStringGenerator(
                secret_string_template="{}",  # noqa: S106 - an empty JSON object
                generate_string_key="placeholder",
                password_length=32,
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            secret,
            "AwsSolutions-SMG4",
            "Gateway secrets are issued by the payment providers; they are rotated in the providers' "
            "dashboards and put here by an operator, so Secrets Manager cannot rotate them.",
        )
        return secret

    def _blind_index(self, names: Names, key: kms.IKey) -> sm.Secret:
        secret = sm.Secret(
            self,
            "BlindIndex",
            secret_name=names.secret("blind-index"),
            description="HMAC key of the blind indexes over encrypted fields (64 hex digits)",
            encryption_key=key,
            # ledgerline.crypto.blind reads the key as hex: digits and a-f are all that remain.
            generate_secret_string=sm.SecretStringGenerator(
                password_length=64,
                exclude_punctuation=True,
                exclude_uppercase=True,
                exclude_characters="ghijklmnopqrstuvwxyz",
                include_space=False,
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            secret,
            "AwsSolutions-SMG4",
            "Rotating the blind-index key invalidates every stored index; it is rotated only by a "
            "planned re-index job, never on a timer.",
        )
        return secret
