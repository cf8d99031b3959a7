"""Application secrets that are not database credentials."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from infra import constants as c
from infra.nag import acknowledge

READ_VALUE = "secretsmanager:GetSecretValue"


class AppSecrets(Construct):
    """Gateway credentials (set by an operator after the first deploy) and the blind-index
    HMAC key (generated). No secret value ever appears in a template.

    Both keep their fixed names (``ledgerline/gateways``): operators put the providers'
    keys in by name and the CLI finds the blind-index key by name. A retried first deploy
    does not collide with them: they are retained only on update or delete, so a failed
    first create deletes them (and CloudFormation deletes secrets without a recovery
    window, which frees the name at once).

    Only the function roles holding the secret's grant, and operators, may read a value:
    a resource policy denies everyone else, IAM administrators included."""

    def __init__(self, scope: Construct, construct_id: str, *, names: c.Names, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self._names = names
        # A reference, not the key itself: sm.Secret would otherwise add "the whole account,
        # through Secrets Manager" to the key policy, which infra.components.keys writes alone.
        self._key = kms.Key.from_key_arn(self, "Key", key.key_arn)
        self.gateways = self._gateways()
        self.blind_index = self._blind_index()
        self._readable_only_with("secret:gateways", self.gateways)
        self._readable_only_with("secret:blind-index", self.blind_index)

    def _gateways(self) -> sm.Secret:
        secret = sm.Secret(
            self,
            "Gateways",
            secret_name=self._names.secret("gateways"),
            description="Payment gateway API and webhook secrets, JSON by provider; set after deploy",
            encryption_key=self._key,
            # A random placeholder: the provider-issued values are put in by an operator.
            generate_secret_string=sm.SecretStringGenerator(
                secret_string_template="{}",  # noqa: S106 - an empty JSON object
                generate_string_key="placeholder",
                password_length=32,
            ),
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        acknowledge(
            secret,
            "AwsSolutions-SMG4",
            "Gateway secrets are issued by the payment providers; they are rotated in the providers' "
            "dashboards and put here by an operator, so Secrets Manager cannot rotate them.",
        )
        return secret

    def _blind_index(self) -> sm.Secret:
        secret = sm.Secret(
            self,
            "BlindIndex",
            secret_name=self._names.secret("blind-index"),
            description="HMAC key of the blind indexes over encrypted fields (64 hex digits)",
            encryption_key=self._key,
            # ledgerline.crypto.blind reads the key as hex: digits and a-f are all that remain.
            generate_secret_string=sm.SecretStringGenerator(
                password_length=64,
                exclude_punctuation=True,
                exclude_uppercase=True,
                exclude_characters="ghijklmnopqrstuvwxyz",
                include_space=False,
            ),
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        acknowledge(
            secret,
            "AwsSolutions-SMG4",
            "Rotating the blind-index key invalidates every stored index; it is rotated only by a "
            "planned re-index job, never on a timer.",
        )
        return secret

    def _readable_only_with(self, grant: str, secret: sm.Secret) -> None:
        # Allowed: (a function role of this copy AND tagged with the grant) OR an operator.
        # Two denies express the complement, since one statement's conditions are all ANDed.
        operator = {f"aws:PrincipalTag/{self._names.principal_tag('operator')}": "true"}
        for sid, conditions in (
            ("OnlyThisCopysFunctionRoles", {"ArnNotLike": {"aws:PrincipalArn": self._names.function_roles_arn()}}),
            ("OnlyRolesHoldingTheGrant", {"StringNotEquals": {f"aws:PrincipalTag/{c.grant_tag(grant)}": "true"}}),
        ):
            conditions.setdefault("StringNotEquals", {}).update(operator)
            secret.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=sid,
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=[READ_VALUE],
                    resources=["*"],
                    conditions=conditions,
                )
            )
