"""An opt-in, SSM-only host for operator access to the database (``-c bastion=true``).

It has no SSH key, no public address and no inbound rule: operators open a Session
Manager port forward through it to the RDS Proxy, run one command (creating the first
admin, say) and deploy again without it.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.components.network import APP_SUBNETS
from infra.nag import acknowledge

# Session Manager's minimal instance policy (no Run Command, no managed policy).
SESSION_MANAGER_ACTIONS = [
    "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
]


class OpsBastion(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, vpc: ec2.IVpc, clients: ec2.ISecurityGroup) -> None:
        super().__init__(scope, construct_id)
        self.role = self._role()
        self.host = self._host(vpc, clients)

    def _role(self) -> iam.Role:
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="Ledgerline ops bastion: Session Manager only",
            inline_policies={
                "SessionManager": iam.PolicyDocument(
                    statements=[iam.PolicyStatement(actions=SESSION_MANAGER_ACTIONS, resources=["*"])]
                )
            },
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "Session Manager's agent actions do not support resource-level permissions.",
        )
        return role

    def _host(self, vpc: ec2.IVpc, clients: ec2.ISecurityGroup) -> ec2.Instance:
        host = ec2.Instance(
            self,
            "Host",
            vpc=vpc,
            vpc_subnets=APP_SUBNETS,
            # The functions' security group: the proxy already admits it, nothing else changes.
            security_group=clients,
            role=self.role,
            instance_type=ec2.InstanceType("t4g.nano"),
            machine_image=ec2.MachineImage.latest_amazon_linux2023(cpu_type=ec2.AmazonLinuxCpuType.ARM_64),
            require_imdsv2=True,
            block_devices=[
                ec2.BlockDevice(device_name="/dev/xvda", volume=ec2.BlockDeviceVolume.ebs(8, encrypted=True))
            ],
        )
        acknowledge(
            host,
            "AwsSolutions-EC28",
            "A temporary operator host that runs a port forward for minutes; detailed monitoring would add nothing.",
        )
        acknowledge(
            host,
            "AwsSolutions-EC29",
            "Meant to be removed after use (deploy without -c bastion=true); termination protection would defeat that.",
        )
        return host
