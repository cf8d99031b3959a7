"""Aurora PostgreSQL Serverless v2 behind an RDS Proxy, with rotated credentials."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as sm
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra import constants as c
from infra.components.network import APP_SUBNETS, DATA_SUBNETS
from infra.nag import acknowledge

ENGINE_VERSION = rds.AuroraPostgresEngineVersion.VER_16_8


class Database(Construct):
    """The master secret and the application secret are what the proxy logs in to Aurora
    with; clients log in to the proxy with IAM (``rds-db:connect``), never with a password.
    The migration keeps the application role's password in step with its secret."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        clients: ec2.ISecurityGroup,
        endpoints: ec2.ISecurityGroup,
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
        self.rotation_security_group = self._rotation_security_group(endpoints)
        self.owner_rotation = self._rotate(self.owner_secret, "OwnerRotation")
        self.app_rotation = self._rotate(self.app_secret, "AppRotation")

    def _cluster(self, min_capacity: float, max_capacity: float) -> rds.DatabaseCluster:
        cluster = rds.DatabaseCluster(
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
            # Left out of the template on purpose: ClusterProtection switches it on once the
            # stack's first create has succeeded (see there).
            deletion_protection=None,
            removal_policy=RemovalPolicy.SNAPSHOT,
            backup=rds.BackupProps(retention=Duration.days(c.AURORA_BACKUP_DAYS), preferred_window="02:00-03:00"),
            iam_authentication=True,
            cloudwatch_logs_exports=["postgresql"],
            enable_performance_insights=True,
            performance_insight_encryption_key=self._key,
            parameters={"rds.force_ssl": "1", "log_min_duration_statement": "1000"},
        )
        acknowledge(
            cluster,
            "AwsSolutions-RDS10",
            "Deletion protection is switched on by the ClusterProtection custom resource as the data stack's "
            "last step, so that a failed first create can still delete the cluster when it rolls back.",
        )
        return cluster

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
        # add_proxy also opens the way to Aurora: the proxy group's egress to the cluster's
        # group and the cluster group's ingress from it, each exactly once.
        proxy = self.cluster.add_proxy(
            "Proxy",
            secrets=[self.app_secret, self.owner_secret],
            vpc=self._vpc,
            vpc_subnets=DATA_SUBNETS,
            security_groups=[proxy_group],
            require_tls=True,
            iam_auth=True,
            debug_logging=False,
            idle_client_timeout=Duration.minutes(30),
            borrow_timeout=c.PROXY_BORROW_TIMEOUT,
            max_connections_percent=90,
        )
        proxy_group.add_ingress_rule(clients, ec2.Port.tcp(c.DB_PORT), "Ledgerline Lambdas")
        return proxy

    def _rotation_security_group(self, endpoints: ec2.ISecurityGroup) -> ec2.SecurityGroup:
        # One group for both rotation functions, so that the Secrets Manager endpoint (private
        # DNS answers for the whole VPC) can admit them; without it rotation would time out.
        group = ec2.SecurityGroup(
            self, "RotationSecurityGroup", vpc=self._vpc, description="Database secret rotation functions"
        )
        # The rule lives in this stack (imported group): the network stack is deployed first.
        here = ec2.SecurityGroup.from_security_group_id(self, "Endpoints", endpoints.security_group_id)
        here.add_ingress_rule(group, ec2.Port.tcp(c.HTTPS_PORT), "Database secret rotation")
        return group

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
            security_group=self.rotation_security_group,
            automatically_after=Duration.days(c.SECRET_ROTATION_DAYS),
            exclude_characters=c.SECRET_EXCLUDED_CHARS,
            # A fresh password needs no rotation, and the application role exists only once
            # the first migration has run: the first rotation waits for the schedule.
            rotate_immediately_on_update=False,
        )


class ClusterProtection(Construct):
    """Switches the cluster's deletion protection on after everything else in its stack
    has been created.

    With ``DeletionProtection: true`` in the template, a first create that fails later (the
    migration, say) cannot roll back: CloudFormation's delete of the new, empty cluster is
    refused and the stack ends in ROLLBACK_FAILED. So the template leaves the property out
    and this ``ModifyDBCluster`` call, which depends on every other resource of the stack,
    runs last: if anything fails first, it never ran and the rollback deletes the cluster;
    once it has run, the stack exists and the protection stays. Leaving the property out
    (rather than ``false``) matters: CloudFormation sends the template's value on every
    cluster update and would switch the protection off again. There is no delete call:
    deleting the stack keeps failing until an operator turns the protection off (README).
    A context flag for "the second deploy" would do the same, but relies on someone
    remembering it; this needs nothing."""

    def __init__(self, scope: Construct, construct_id: str, *, cluster: rds.DatabaseCluster) -> None:
        super().__init__(scope, construct_id)
        protect = cr.AwsSdkCall(
            service="RDS",
            action="ModifyDBCluster",
            parameters={
                "DBClusterIdentifier": cluster.cluster_identifier,
                "DeletionProtection": True,
                "ApplyImmediately": True,
            },
            physical_resource_id=cr.PhysicalResourceId.of(cluster.cluster_identifier),
        )
        log_group = logs.LogGroup(self, "Logs", retention=c.LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY)
        # A role of our own: CDK's default one would carry the AWS-managed basic execution policy.
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Switches on the Aurora cluster's deletion protection",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]
            )
        )
        self.resource = cr.AwsCustomResource(
            self,
            "SwitchOn",
            resource_type="Custom::LedgerlineDeletionProtection",
            on_create=protect,
            on_update=protect,
            policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=[cluster.cluster_arn]),
            role=role,
            log_group=log_group,
            install_latest_aws_sdk=False,
        )

    def after(self, *constructs: Construct) -> None:
        """Run only once all of ``constructs`` exist."""
        self.resource.node.add_dependency(*constructs)
