"""One Lambda function with its own least-privilege role, log group and environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import Aws, Duration, Fn, RemovalPolicy, Stack, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from constructs import Construct

from infra import constants as c
from infra.assets import AssetPaths
from infra.components.grants import GrantCatalog
from infra.components.network import APP_SUBNETS
from infra.nag import acknowledge

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
# Lambda needs these to attach functions to the VPC; EC2 does not scope them by resource.
_ENI_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]


@dataclass(frozen=True)
class DatabaseAccess:
    """Functions log in to the RDS Proxy with an IAM token (``rds-db:connect`` for their
    database user), never with a password: there is no database secret in any function."""

    host: str  # the RDS Proxy endpoint
    name: str
    proxy: rds.IDatabaseProxy
    # The producer stack's output holding the proxy's resource id (prx-...), which the
    # rds-db:connect ARN names.
    proxy_id_output: str

    def connect_statement(self, scope: Construct, user: str) -> iam.PolicyStatement:
        """``rds-db:connect`` as ``user`` through this proxy, from a function in ``scope``.

        Other stacks read the id from the producer's output: CDK's ``grant_connect`` would
        split the proxy ARN there, and ``Fn::Split`` does not accept ``Fn::GetStackOutput``."""
        producer = Stack.of(self.proxy)
        if _top_level(Stack.of(scope)) is producer:
            proxy_id = proxy_resource_id(self.proxy)
        else:
            proxy_id = Fn.get_stack_output(producer.stack_name, self.proxy_id_output, region=Aws.REGION)
        arn = f"arn:{Aws.PARTITION}:rds-db:{Aws.REGION}:{Aws.ACCOUNT_ID}:dbuser:{proxy_id}/{user}"
        return iam.PolicyStatement(actions=["rds-db:connect"], resources=[arn])


def proxy_resource_id(proxy: rds.IDatabaseProxy) -> str:
    """``arn:aws:rds:<region>:<account>:db-proxy:prx-0123abcd`` → ``prx-0123abcd``."""
    return Fn.select(6, Fn.split(":", proxy.db_proxy_arn))


def _top_level(stack: Stack) -> Stack:
    while stack.nested_stack_parent is not None:
        stack = stack.nested_stack_parent
    return stack


@dataclass(frozen=True)
class FunctionPlatform:
    """What every function in one stack is built on."""

    vpc: ec2.IVpc
    security_group: ec2.ISecurityGroup
    assets: AssetPaths
    database: DatabaseAccess
    environment: Mapping[str, str]  # the variables every function gets
    grants: GrantCatalog | None = None  # None: functions of this stack may not ask for grants

    @property
    def role_path(self) -> str:
        """The IAM path of every function role of this copy (``constants.Names.role_path``)."""
        return c.Names(self.environment[c.ENV_RESOURCE_PREFIX]).role_path()


@dataclass(frozen=True)
class FunctionSpec:
    function_name: str
    handler: str  # functions.system.health.handler
    description: str
    timeout: Duration
    grants: tuple[str, ...] = ()
    reserved_concurrency: int | None = None
    memory_mb: int = c.LAMBDA_MEMORY_MB
    environment: Mapping[str, str] = field(default_factory=dict)
    # The database login, and the variable that tells the code which it is (the migration
    # logs in as the master user, under LEDGERLINE_DB_OWNER_USER).
    db_user: str = c.DB_APP_USER
    db_user_env: str = c.ENV_DB_USER


class SharedCode(Construct):
    """The function code once per stack (a code asset binds to one stack, nested ones
    included), and the common layer once per top-level stack: the API's route groups
    share their parent's layer instead of publishing a version each."""

    ID = "SharedCode"

    def __init__(self, scope: Construct, construct_id: str, *, assets: AssetPaths, with_layer: bool) -> None:
        super().__init__(scope, construct_id)
        self.code = lambda_.Code.from_asset(str(assets.functions))
        self.layer = self._layer(assets) if with_layer else None

    def _layer(self, assets: AssetPaths) -> lambda_.LayerVersion:
        return lambda_.LayerVersion(
            self,
            "CommonLayer",
            code=lambda_.Code.from_asset(str(assets.layer)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="ledgerline shared library and runtime dependencies (pyproject.toml)",
        )

    @classmethod
    def code_for(cls, scope: Construct, assets: AssetPaths) -> lambda_.Code:
        return cls._of(Stack.of(scope), assets).code

    @classmethod
    def layer_for(cls, scope: Construct, assets: AssetPaths) -> lambda_.ILayerVersion:
        layer = cls._of(_top_level(Stack.of(scope)), assets).layer
        assert layer is not None
        return layer

    @classmethod
    def _of(cls, stack: Stack, assets: AssetPaths) -> SharedCode:
        found = stack.node.try_find_child(cls.ID)
        if isinstance(found, SharedCode):
            return found
        return cls(stack, cls.ID, assets=assets, with_layer=stack.nested_stack_parent is None)


class LedgerFunction(Construct):
    """A Python 3.12 arm64 Lambda in the app subnets, reaching the database through the
    proxy as its database user (IAM authentication), plus exactly the grants its table row
    names. Its role lives under the copy's IAM path and carries one tag per grant: key
    policies admit only such roles (``infra.components.keys``)."""

    def __init__(self, scope: Construct, construct_id: str, *, spec: FunctionSpec, platform: FunctionPlatform) -> None:
        super().__init__(scope, construct_id)
        self.spec = spec
        self._platform = platform
        self.log_group = self._log_group()
        self.role = self._role()
        environment = self._base_environment() | self._grant_environment() | dict(spec.environment)
        self.function = self._function(environment)

    def grant_statements(self, statements: tuple[iam.PolicyStatement, ...] | list[iam.PolicyStatement]) -> None:
        for statement in statements:
            self.role.add_to_policy(statement)

    def _log_group(self) -> logs.LogGroup:
        # Operational logs only: the audit trail, not the logs, is the record of what happened.
        return logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{self.spec.function_name}",
            retention=c.LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )

    def _role(self) -> iam.Role:
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of {self.spec.function_name}",
            path=self._platform.role_path,
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[self.log_group.log_group_arn]
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=_ENI_ACTIONS, resources=["*"]))
        role.add_to_policy(self._platform.database.connect_statement(self, self.spec.db_user))
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "Only the Lambda VPC network-interface actions and X-Ray trace upload, which IAM cannot "
            "scope to a resource, use '*'; every data permission names its resource ARN.",
        )
        return role

    def _base_environment(self) -> dict[str, str]:
        database = self._platform.database
        return dict(self._platform.environment) | {
            c.ENV_DB_HOST: database.host,
            c.ENV_DB_NAME: database.name,
            self.spec.db_user_env: self.spec.db_user,
            c.ENV_DB_IAM_AUTH: "true",
        }

    def _grant_environment(self) -> dict[str, str]:
        if not self.spec.grants:
            return {}
        catalog = self._platform.grants
        if catalog is None:
            raise ValueError(f"{self.spec.handler} asks for grants {self.spec.grants}, but its stack offers none")
        environment: dict[str, str] = {}
        for grant in self.spec.grants:
            effect = catalog.resolve(grant, owner=self.spec.handler)
            self.grant_statements(effect.statements)
            Tags.of(self.role).add(c.grant_tag(grant), "true")
            for finding, reason in effect.acknowledgments.items():
                acknowledge(self.role, finding, reason)
            environment |= effect.environment
        return environment

    def _function(self, environment: dict[str, str]) -> lambda_.Function:
        assets = self._platform.assets
        function = lambda_.Function(
            self,
            "Function",
            function_name=self.spec.function_name,
            description=self.spec.description[:256],
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=self.spec.handler,
            code=SharedCode.code_for(self, assets),
            layers=[SharedCode.layer_for(self, assets)],
            memory_size=self.spec.memory_mb,
            timeout=self.spec.timeout,
            reserved_concurrent_executions=self.spec.reserved_concurrency,
            environment=environment,
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            tracing=lambda_.Tracing.ACTIVE,
            vpc=self._platform.vpc,
            vpc_subnets=APP_SUBNETS,
            security_groups=[self._platform.security_group],
        )
        acknowledge(
            function,
            "AwsSolutions-L1",
            "Python 3.12 is the project's pinned runtime (pyproject, layer wheels built for cp312); "
            "moving to a newer runtime is a deliberate upgrade, not a drive-by.",
        )
        return function
