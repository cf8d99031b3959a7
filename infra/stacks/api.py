from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants as c
from infra.assets import AssetPaths
from infra.components.functions import FunctionPlatform
from infra.components.grants import GrantCatalog, GrantTargets
from infra.components.http_api import RoutedHttpApi
from infra.settings import InfraSettings
from infra.stacks.audit import AuditStack
from infra.stacks.data import DataStack
from infra.stacks.network import NetworkStack
from infra.stacks.security import SecurityStack
from ledgerline.routes import Route


class ApiStack(Stack):
    """The HTTP API, its Lambda authorizer and one Lambda per route. Changes with every
    code deploy."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        routes: Sequence[Route],
        queue_names: Sequence[str],
        names: c.Names,
        settings: InfraSettings,
        network: NetworkStack,
        security: SecurityStack,
        data: DataStack,
        audit: AuditStack,
        environment: Mapping[str, str],
        assets: AssetPaths,
    ) -> None:
        super().__init__(scope, construct_id, description="Ledgerline HTTP API: one Lambda per route")
        self.http = RoutedHttpApi(
            self,
            "Http",
            names=names,
            issuer=settings.jwt_issuer,
            rate_limit=settings.api_rate_limit,
            burst_limit=settings.api_burst_limit,
        )
        self.issuer = self.http.issuer
        targets = GrantTargets(
            jwt_key=security.keys.jwt,
            field_key=security.keys.field,
            audit_key=security.keys.audit_checkpoint,
            secrets_key=security.keys.secrets,
            audit_bucket=s3.Bucket.from_bucket_name(self, "AuditBucket", names.audit_bucket()),
            email_from=settings.email_from,
            gateway_secret=security.secrets.gateways,
            blind_index_secret=security.secrets.blind_index,
            queues=self._queues_by_name(queue_names, names),
        )
        platform = FunctionPlatform(
            vpc=network.vpc,
            security_group=network.app_security_group,
            assets=assets,
            database=data.access,
            environment={**environment, c.ENV_JWT_ISSUER: self.issuer},
            grants=GrantCatalog(self, targets, audit_bucket_name=names.audit_bucket()),
        )
        self.http.add_routes(
            routes,
            platform,
            money_concurrency=settings.money_reserved_concurrency,
            money_rate_limit=settings.money_rate_limit,
            money_burst_limit=settings.money_burst_limit,
        )
        CfnOutput(self, "ApiUrl", value=self.http.api.api_endpoint)
        CfnOutput(self, "JwtIssuer", value=self.issuer)

    def _queues_by_name(self, queue_names: Sequence[str], names: c.Names) -> dict[str, sqs.IQueue]:
        # The jobs stack (deployed after this one) owns the queues; their names are fixed,
        # so the API's functions address them without a stack reference.
        return {
            name: sqs.Queue.from_queue_arn(
                self, f"Queue{c.pascal(name)}", self.format_arn(service="sqs", resource=names.queue(name))
            )
            for name in queue_names
        }
