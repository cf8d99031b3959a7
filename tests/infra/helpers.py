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
    """``"GET /v1/health"`` → (route properties, properties of the function it invokes),
    across the stack's route groups (nested stacks)."""
    out: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for raw in app.raws(stack):
        resources = raw["Resources"]
        for route in resources.values():
            if route["Type"] != "AWS::ApiGatewayV2::Route":
                continue
            props = route["Properties"]
            integration = resources[ref(props["Target"]["Fn::Join"][1][1])]
            function = resources[ref(integration["Properties"]["IntegrationUri"])]
            out[props["RouteKey"]] = (props, function["Properties"])
    return out


def from_parent(app: Synthesized, stack: str, value: Any) -> Any:
    """A nested stack's parameter reference → what the parent stack passes in."""
    name = ref(value)
    if name and name.startswith("referenceto"):
        return app.parameter(stack, name)
    return value


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


def resolve_output(app: Synthesized, value: Any, *, consumer: str | None = None) -> tuple[str, Any]:
    """Follow a cross-stack reference to (producer stack, the value it exports); with
    ``consumer``, first through the consumer's nested-stack parameter."""
    if consumer:
        value = from_parent(app, consumer, value)
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
