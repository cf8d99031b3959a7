"""Small readers over synthesized templates."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synthesized


def ref(value: Any) -> str | None:
    """The logical id behind ``{"Ref": id}`` or ``{"Fn::GetAtt": [id, attr]}``."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
    return None


def functions_by_name(app: Synthesized, stack: str) -> dict[str, dict[str, Any]]:
    """Lambda function properties by FunctionName (logical id for CDK's own, unnamed functions)."""
    functions = app.resources(stack, "AWS::Lambda::Function")
    return {r["Properties"].get("FunctionName", logical): r["Properties"] for logical, r in functions.items()}


def route_targets(app: Synthesized, stack: str) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """``"GET /v1/health"`` → (route properties, properties of the function it invokes)."""
    integrations = app.resources(stack, "AWS::ApiGatewayV2::Integration")
    functions = app.resources(stack, "AWS::Lambda::Function")
    out: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for route in app.resources(stack, "AWS::ApiGatewayV2::Route").values():
        props = route["Properties"]
        integration_id = ref(props["Target"]["Fn::Join"][1][1])
        function_id = ref(integrations[integration_id]["Properties"]["IntegrationUri"])
        out[props["RouteKey"]] = (props, functions[function_id]["Properties"])
    return out


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document.get("Statement", [])
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_statements(app: Synthesized, stack: str, role_id: str) -> list[dict[str, Any]]:
    """Every statement attached to a role (its default policy and inline policies)."""
    found: list[dict[str, Any]] = []
    for policy in app.resources(stack, "AWS::IAM::Policy").values():
        if role_id in [ref(r) for r in policy["Properties"].get("Roles", [])]:
            found += statements(policy["Properties"]["PolicyDocument"])
    role = app.resources(stack, "AWS::IAM::Role")[role_id]
    for inline in role["Properties"].get("Policies", []):
        found += statements(inline["PolicyDocument"])
    return found


def resolve_output(app: Synthesized, value: Any) -> tuple[str, Any]:
    """Follow a cross-stack reference to (producer stack, the value it exports)."""
    if isinstance(value, dict) and "Fn::GetStackOutput" in value:
        ref_ = value["Fn::GetStackOutput"]
        outputs = app.raw(ref_["StackName"])["Outputs"]
        return ref_["StackName"], outputs[ref_["OutputName"]]["Value"]
    if isinstance(value, dict) and "Fn::ImportValue" in value:
        wanted = value["Fn::ImportValue"]
        for stack in app.built.stacks:
            for output in app.raw(stack.stack_name).get("Outputs", {}).values():
                if output.get("Export", {}).get("Name") == wanted:
                    return stack.stack_name, output["Value"]
    raise AssertionError(f"{value} is not a cross-stack reference")
