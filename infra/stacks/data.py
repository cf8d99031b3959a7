from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.assets import AssetPaths
from infra.components.database import ClusterProtection, Database
from infra.components.evidence import EvidenceBucket
from infra.components.functions import DatabaseAccess, FunctionPlatform, proxy_resource_id
from infra.components.keys import symmetric_key
from infra.components.migration import Migration
from infra.constants import DB_NAME, Names
from infra.stacks.network import NetworkStack

PROXY_ID_OUTPUT = "ProxyResourceId"


class DataStack(Stack):
    """Aurora, RDS Proxy, database secrets and their rotation, and the migration that
    runs on deploy (before the API and jobs stacks update their code); the cluster's
    deletion protection is switched on last."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        network: NetworkStack,
        environment: dict[str, str],
        assets: AssetPaths,
        project_root: Path,
        min_capacity: float,
        max_capacity: float,
    ) -> None:
        super().__init__(scope, construct_id, description="Ledgerline data: Aurora PostgreSQL, RDS Proxy, migrations")
        # The database's own key: Aurora storage, Performance Insights, the database secrets.
        # Its policy keeps the account's default delegation: RDS, RDS Proxy and the rotation
        # applications (roles named by the Serverless Application Repository) use it.
        self.key = symmetric_key(
            self,
            "DataKey",
            alias=names.key_alias("data"),
            description="Aurora storage and the database secrets",
        )
        self.database = Database(
            self,
            "Database",
            vpc=network.vpc,
            clients=network.app_security_group,
            endpoints=network.endpoint_security_group,
            key=self.key,
            names=names,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
        )
        self.access = DatabaseAccess(
            host=self.database.proxy.endpoint,
            name=DB_NAME,
            proxy=self.database.proxy,
            proxy_id_output=PROXY_ID_OUTPUT,
        )
        platform = FunctionPlatform(
            vpc=network.vpc,
            security_group=network.app_security_group,
            assets=assets,
            database=self.access,
            environment=environment,
        )
        self.migration = Migration(
            self,
            "Migration",
            database=self.database,
            key=self.key,
            platform=platform,
            names=names,
            project_root=project_root,
        )
        # Dispute evidence documents (ledgerline.aws.evidence): data, kept like the database.
        self.evidence = EvidenceBucket(self, "Evidence", names=names)
        self.protection = ClusterProtection(self, "ClusterProtection", cluster=self.database.cluster)
        self.protection.after(self.key, self.database, self.migration, self.evidence)
        CfnOutput(self, "ProxyEndpoint", value=self.database.proxy.endpoint)
        # What rds-db:connect ARNs name (arn:aws:rds-db:<region>:<account>:dbuser:<id>/<user>).
        CfnOutput(self, PROXY_ID_OUTPUT, value=proxy_resource_id(self.database.proxy))
        CfnOutput(self, "OwnerSecretArn", value=self.database.owner_secret.secret_arn)
        CfnOutput(self, "AppSecretArn", value=self.database.app_secret.secret_arn)
        CfnOutput(self, "MigrationFunctionName", value=self.migration.function.function.function_name)
        CfnOutput(self, "EvidenceBucketName", value=self.evidence.bucket.bucket_name)
