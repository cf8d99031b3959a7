"""The VPC reaches the AWS APIs the functions call through interface endpoints, not the NAT."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from infra import constants as c
from tests.infra.conftest import Synthesized
from tests.infra.helpers import ref

NETWORK = c.NETWORK_STACK
LIBRARY_AWS = Path(__file__).resolve().parents[2] / "layers/common/python/ledgerline"
# boto3 client name → the endpoint service it talks to (botocore's endpoint prefix).
ENDPOINT_OF_CLIENT = {"secretsmanager": "secretsmanager", "kms": "kms", "sqs": "sqs", "sesv2": "email", "ses": "email"}
# Clients that make no network call from a function, or only outside AWS.
NO_ENDPOINT_NEEDED = {
    "rds": "generate_db_auth_token signs locally",
    "sts": "only the audit-bucket fallback calls it, and every function with an audit grant gets the bucket name",
    "s3": "the S3 gateway endpoint",
    "athena": "only `ledgerline audit query` calls it, from an auditor's machine with the auditor role, never a function in the VPC",
}


def _endpoints(app: Synthesized) -> dict[str, dict[str, Any]]:
    """Interface endpoints by service short name (``com.amazonaws.<region>.<name>``)."""
    found = {}
    for endpoint in app.resources(NETWORK, "AWS::EC2::VPCEndpoint").values():
        props = endpoint["Properties"]
        if props.get("VpcEndpointType") == "Interface":
            found[props["ServiceName"]["Fn::Join"][1][-1].lstrip(".")] = props
    return found


def _clients_the_library_creates() -> set[str]:
    names: set[str] = set()
    for path in LIBRARY_AWS.rglob("*.py"):
        if "local" in path.parts:
            continue
        names |= set(re.findall(r"clients\.client\(\"([a-z0-9-]+)\"\)", path.read_text()))
    return names


def test_every_aws_api_the_library_calls_has_an_endpoint_or_a_reason_not_to() -> None:
    clients = _clients_the_library_creates()
    assert {"secretsmanager", "kms", "sqs", "sesv2"} <= clients
    missing = {client for client in clients if client not in ENDPOINT_OF_CLIENT and client not in NO_ENDPOINT_NEEDED}
    assert not missing, f"boto3 clients with no interface endpoint in infra.constants.INTERFACE_ENDPOINTS: {missing}"
    assert {ENDPOINT_OF_CLIENT[client] for client in clients if client in ENDPOINT_OF_CLIENT} <= set(
        c.INTERFACE_ENDPOINTS
    )


@pytest.mark.parametrize("service", ["secretsmanager", "kms", "sqs", "email", "xray"])
def test_interface_endpoint_with_private_dns_in_the_app_subnets(real: Synthesized, service: str) -> None:
    endpoint = _endpoints(real)[service]
    # The SDKs' default host names resolve to it: the code needs no endpoint_url.
    assert endpoint["PrivateDnsEnabled"] is True
    subnets = real.raw(NETWORK)["Resources"]
    for subnet in endpoint["SubnetIds"]:
        tags = {t["Key"]: t["Value"] for t in subnets[ref(subnet)]["Properties"]["Tags"]}
        assert tags["aws-cdk:subnet-name"] == "app"
    assert len(endpoint["SubnetIds"]) == 2, "one per AZ"
    (group,) = endpoint["SecurityGroupIds"]
    assert ref(group).startswith("NetworkEndpointSecurityGroup")


def test_endpoints_admit_https_from_the_lambdas_and_the_rotation_functions_only(real: Synthesized) -> None:
    (group_id,) = [g for g in real.resources(NETWORK, "AWS::EC2::SecurityGroup") if "Endpoint" in g]
    group = real.raw(NETWORK)["Resources"][group_id]["Properties"]
    assert "SecurityGroupIngress" not in group, "no inline rule (CDK's open=True would admit the whole VPC)"
    sources = {}
    for stack in (NETWORK, c.DATA_STACK):
        for rule in real.resources(stack, "AWS::EC2::SecurityGroupIngress").values():
            props = rule["Properties"]
            if group_id in str(props["GroupId"]):
                assert (props["IpProtocol"], props["FromPort"], props["ToPort"]) == ("tcp", 443, 443)
                sources[stack] = props["SourceSecurityGroupId"]
    assert ref(sources[NETWORK]).startswith("NetworkAppSecurityGroup")
    assert ref(sources[c.DATA_STACK]).startswith("DatabaseRotationSecurityGroup")
    rotations = real.resources(c.DATA_STACK, "AWS::Serverless::Application").values()
    for rotation in rotations:
        assert "DatabaseRotationSecurityGroup" in str(rotation["Properties"]["Parameters"]["vpcSecurityGroupIds"])


def test_interface_endpoints_follow_the_context(assets) -> None:  # type: ignore[no-untyped-def]
    from infra.app import build_app

    built = build_app(context={"interfaceEndpoints": "kms,sqs"}, assets=assets, checks=False)
    names = [child.node.id for child in built.network.node.find_all() if child.node.id in ("Kms", "Sqs", "Email")]
    assert sorted(names) == ["Kms", "Sqs"]
