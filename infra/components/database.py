"""Aurora PostgreSQL Serverless v2 behind an RDS Proxy, with rotated credentials."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as sm
from constructs import Construct

from infra import constants as c
from infra.components.network import APP_SUBNETS, DATA_SUBNETS

ENGINE_VERSION = rds.AuroraPostgresEngineVersion.VER_16_8


class Database(Construct):
    """The master secret is for migrations only; API and job functions connect as the
    application role, whose secret the migration keeps in step with the database."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        clients: ec2.ISecurityGroup,
        key: kms.IKey,
        names: c.Names,
        min_capacity: float,
        max_capacity: float,
    ) -> None:
        super().__init__(scope, construct_id)
        self._vpc = vpc
        self._key = key
        self._names = names
        self.cluster = self._cluster(min_capacity, max_capacity)
        self.owner_secret: sm.ISecret = self.cluster.secret  # type: ignore[assignment]
        self.app_secret = self._app_secret()
        self.proxy = self._proxy(clients)
        self.owner_rotation = self._rotate(self.owner_secret, "OwnerRotation")
        self.app_rotation = self._rotate(self.app_secret, "AppRotation")

    def _cluster(self, min_capacity: float, max_capacity: float) -> rds.DatabaseCluster:
        return rds.DatabaseCluster(
            self,
            "Cluster",
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=ENGINE_VERSION),
            credentials=rds.Credentials.from_generated_secret(
                c.DB_MASTER_USER,
                secret_name=self._names.secret("db-owner"),
                encryption_key=self._key,
                exclude_characters=c.SECRET_EXCLUDED_CHARS,
            ),
            default_database_name=c.DB_NAME,
            writer=rds.ClusterInstance.serverless_v2("Writer", **self._instance_options()),
            readers=[rds.ClusterInstance.serverless_v2("Reader", scale_with_writer=True, **self._instance_options())],
            serverless_v2_min_capacity=min_capacity,
            serverless_v2_max_capacity=max_capacity,
            vpc=self._vpc,
            vpc_subnets=DATA_SUBNETS,
            storage_encrypted=True,
            storage_encryption_key=self._key,
            deletion_protection=True,
            removal_policy=RemovalPolicy.SNAPSHOT,
            backup=rds.BackupProps(retention=Duration.days(c.AURORA_BACKUP_DAYS), preferred_window="02:00-03:00"),
            iam_authentication=True,
            cloudwatch_logs_exports=["postgresql"],
            enable_performance_insights=True,
            performance_insight_encryption_key=self._key,
            parameters={"rds.force_ssl": "1", "log_min_duration_statement": "1000"},
        )

    def _instance_options(self) -> dict[str, object]:
        return {
            "publicly_accessible": False,
            "enable_performance_insights": True,
            "performance_insight_encryption_key": self._key,
        }

    def _app_secret(self) -> sm.ISecret:
        secret = rds.DatabaseSecret(
            self,
            "AppSecret",
            username=c.DB_APP_USER,
            dbname=c.DB_NAME,
            secret_name=self._names.secret("db-app"),
            encryption_key=self._key,
            exclude_characters=c.SECRET_EXCLUDED_CHARS,
        )
        # host (the writer, which rotation needs; functions use LEDGERLINE_DB_HOST, the proxy),
        # port and engine come from the cluster; the password is generated, never in a template.
        return secret.attach(self.cluster)

    def _proxy(self, clients: ec2.ISecurityGroup) -> rds.DatabaseProxy:
        proxy_group = ec2.SecurityGroup(
            self, "ProxySecurityGroup", vpc=self._vpc, description="RDS Proxy", allow_all_outbound=False
        )
        proxy = self.cluster.add_proxy(
            "Proxy",
            secrets=[self.app_secret, self.owner_secret],
            vpc=self._vpc,
            vpc_subnets=DATA_SUBNETS,
            security_groups=[proxy_group],
            require_tls=True,
            debug_logging=False,
            idle_client_timeout=Duration.minutes(30),
            max_connections_percent=90,
        )
        proxy_group.add_ingress_rule(clients, ec2.Port.tcp(c.DB_PORT), "Ledgerline Lambdas")
        proxy_group.add_egress_rule(
            self.cluster.connections.security_groups[0], ec2.Port.tcp(c.DB_PORT), "proxy to Aurora"
        )
        self.cluster.connections.allow_default_port_from(proxy_group, "RDS Proxy")
        return proxy

    def _rotate(self, secret: sm.ISecret, construct_id: str) -> sm.SecretRotation:
        # The rotation function needs the Secrets Manager API, so it runs in the app
        # subnets (with egress), not in the isolated data subnets.
        return sm.SecretRotation(
            self,
            construct_id,
            application=sm.SecretRotationApplication.POSTGRES_ROTATION_SINGLE_USER,
            secret=secret,
            target=self.cluster,
            vpc=self._vpc,
            vpc_subnets=APP_SUBNETS,
            automatically_after=Duration.days(c.SECRET_ROTATION_DAYS),
            exclude_characters=c.SECRET_EXCLUDED_CHARS,
            # A fresh password needs no rotation, and the application role exists only once
            # the first migration has run: the first rotation waits for the schedule.
            rotate_immediately_on_update=False,
        )
