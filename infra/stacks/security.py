from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.components.keys import Keys
from infra.components.secrets import AppSecrets
from infra.constants import Names


class SecurityStack(Stack):
    """KMS keys and application secrets: the longest-lived resources, all retained."""

    def __init__(self, scope: Construct, construct_id: str, *, names: Names) -> None:
        super().__init__(scope, construct_id, description="Ledgerline keys and secrets")
        self.keys = Keys(self, "Keys", names=names)
        self.secrets = AppSecrets(self, "Secrets", names=names, key=self.keys.secrets)
        CfnOutput(self, "GatewaySecretArn", value=self.secrets.gateways.secret_arn)
        CfnOutput(self, "JwtKeyArn", value=self.keys.jwt.key_arn)
