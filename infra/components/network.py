"""The VPC: public (NAT), private with egress (Lambdas), isolated (database)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import constants as c

APP_SUBNETS = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
DATA_SUBNETS = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)


class Network(Construct):
    """Lambdas sit in private subnets with egress (gateways and merchant endpoints are on
    the internet); Aurora and its proxy sit in isolated subnets with no route out. The AWS
    APIs the functions call are reached through interface endpoints in the app subnets, so
    none of those calls depends on the NAT gateway (one, in one AZ, by default)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, nat_gateways: int, interface_endpoints: Sequence[str]
    ) -> None:
        super().__init__(scope, construct_id)
        self.vpc = self._vpc(nat_gateways)
        self._flow_logs()
        self.app_security_group = self._app_security_group()
        self.endpoint_security_group = self._endpoint_security_group()
        self.endpoints = self._endpoints(interface_endpoints)

    def _vpc(self, nat_gateways: int) -> ec2.Vpc:
        return ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="app", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22),
                ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
            restrict_default_security_group=False,
        )

    def _flow_logs(self) -> None:
        group = logs.LogGroup(self, "FlowLogs", retention=c.LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY)
        self.vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(group))

    def _endpoints(self, services: Sequence[str]) -> dict[str, ec2.InterfaceVpcEndpoint]:
        # Audit objects and Lambda code never cross the NAT.
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        return {
            service: self.vpc.add_interface_endpoint(
                c.pascal(service),
                service=ec2.InterfaceVpcEndpointAwsService(service),
                # The SDKs' default host names resolve to the endpoint: no endpoint_url anywhere.
                private_dns_enabled=True,
                subnets=APP_SUBNETS,
                security_groups=[self.endpoint_security_group],
                open=False,  # only the security groups admitted below, not the whole VPC
            )
            for service in services
        }

    def _app_security_group(self) -> ec2.SecurityGroup:
        return ec2.SecurityGroup(
            self,
            "AppSecurityGroup",
            vpc=self.vpc,
            description="Ledgerline Lambdas: allowed into the RDS Proxy",
            allow_all_outbound=True,
        )

    def _endpoint_security_group(self) -> ec2.SecurityGroup:
        group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="Interface endpoints of the AWS APIs: HTTPS from the Ledgerline Lambdas",
            allow_all_outbound=False,
        )
        group.add_ingress_rule(self.app_security_group, ec2.Port.tcp(c.HTTPS_PORT), "Ledgerline Lambdas")
        return group
