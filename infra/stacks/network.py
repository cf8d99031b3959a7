from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.components.bastion import OpsBastion
from infra.components.network import Network
from infra.settings import InfraSettings


class NetworkStack(Stack):
    """VPC, subnets, flow logs, endpoints, the Lambdas' security group. Changes rarely."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings) -> None:
        super().__init__(scope, construct_id, description="Ledgerline network: VPC, subnets, flow logs, endpoints")
        network = Network(
            self, "Network", nat_gateways=settings.nat_gateways, interface_endpoints=settings.interface_endpoints
        )
        self.vpc = network.vpc
        self.app_security_group = network.app_security_group
        # Other stacks' functions outside the app group (secret rotation) are admitted here.
        self.endpoint_security_group = network.endpoint_security_group
        self.bastion = (
            OpsBastion(self, "Bastion", vpc=self.vpc, clients=self.app_security_group) if settings.bastion else None
        )
        if self.bastion:
            CfnOutput(self, "BastionInstanceId", value=self.bastion.host.instance_id)
