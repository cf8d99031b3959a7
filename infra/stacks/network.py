from __future__ import annotations

from aws_cdk import Stack
from constructs import Construct

from infra.components.network import Network
from infra.settings import InfraSettings


class NetworkStack(Stack):
    """VPC, subnets, flow logs, the Lambdas' security group. Changes rarely."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings) -> None:
        super().__init__(scope, construct_id, description="Ledgerline network: VPC, subnets, flow logs")
        network = Network(self, "Network", nat_gateways=settings.nat_gateways)
        self.vpc = network.vpc
        self.app_security_group = network.app_security_group
