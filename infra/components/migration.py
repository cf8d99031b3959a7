"""Runs the database migrations on every deploy that changes them."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CustomResource, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra import constants as c
from infra.assets import migrations_hash
from infra.components.database import Database
from infra.components.functions import FunctionPlatform, FunctionSpec, LedgerFunction
from infra.components.grants import secret_read_statements
from infra.nag import acknowledge


class Migration(Construct):
    """A custom resource whose properties carry a hash of the migration SQL files, so
    CloudFormation calls the migration function again exactly when they change. The
    function logs in through the proxy as the master user with IAM authentication; it
    also creates/updates the application role, whose password it reads from the
    application secret (the proxy logs in to Aurora with that secret)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        database: Database,
        key: kms.IKey,
        platform: FunctionPlatform,
        names: c.Names,
        project_root: Path,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = self._function(database, key, platform, names)
        self.provider = self._provider()
        self.resource = self._resource(database, project_root)

    def _function(
        self, database: Database, key: kms.IKey, platform: FunctionPlatform, names: c.Names
    ) -> LedgerFunction:
        function = LedgerFunction(
            self,
            "Migrate",
            spec=FunctionSpec(
                function_name=names.migration_function(),
                handler=c.MIGRATION_HANDLER,
                description="Applies ledgerline database migrations (CloudFormation custom resource)",
                timeout=c.MIGRATION_TIMEOUT,
                reserved_concurrency=None,
                environment={c.ENV_DB_SECRET_ARN: database.app_secret.secret_arn},
                db_user=c.DB_MASTER_USER,
                db_user_env=c.ENV_DB_OWNER_USER,
            ),
            platform=platform,
        )
        function.grant_statements(secret_read_statements(database.app_secret, key, Stack.of(self).region))
        return function

    def _provider(self) -> cr.Provider:
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.function.function,
            log_group=logs.LogGroup(
                self, "ProviderLogs", retention=c.LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY
            ),
        )
        reason = "CDK's custom-resource provider framework (Node.js, managed by aws-cdk-lib): "
        acknowledge(
            provider,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            reason + "only CloudWatch Logs permissions.",
        )
        acknowledge(
            provider,
            f"AwsSolutions-IAM5[Resource::<{self._logical_id()}.Arn>:*]",
            reason + "invokes the versions of the one migration function.",
        )
        return provider

    def _resource(self, database: Database, project_root: Path) -> CustomResource:
        resource = CustomResource(
            self,
            "Run",
            service_token=self.provider.service_token,
            resource_type="Custom::LedgerlineMigration",
            properties={
                "MigrationsHash": migrations_hash(project_root, c.MIGRATIONS_GLOB),
                "AppSecretArn": database.app_secret.secret_arn,
            },
        )
        # The writer must be up and the proxy must know both secrets before the first run.
        resource.node.add_dependency(database.cluster)
        resource.node.add_dependency(database.proxy)
        return resource

    def _logical_id(self) -> str:
        function = self.function.function
        stack = Stack.of(self)
        return stack.resolve(stack.get_logical_id(function.node.default_child))  # type: ignore[arg-type]
