"""cdk-nag (AWS Solutions rules) as a CDK validation plugin, and reasoned acknowledgments."""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

PACK = "AwsSolutions"
# Every acknowledgment made, so a test can prove none is stale (suppressing nothing).
ACKNOWLEDGMENTS: list[tuple[IConstruct, str]] = []


def add_checks(app: App) -> None:
    """Findings make ``app.synth()`` raise; the report lands in ``cdk.out/validation-report.json``."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Accept one finding (``AwsSolutions-IAM5[Resource::*]``) on ``scope`` and below, saying why."""
    if not reason.strip():
        raise ValueError(f"acknowledging {rule} needs a reason")
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PACK}::{rule}", reason=reason))
    ACKNOWLEDGMENTS.append((scope, f"{PACK}::{rule}"))
