"""A failed first deploy can be retried: its rollback leaves nothing that blocks the retry.

CloudFormation keeps a ``DeletionPolicy: Retain`` resource even when it rolls back the
create that made it; a fixed-name resource kept that way makes the retry fail with
"already exists". ``RetainExceptOnCreate`` keeps data on stack deletion and replacement
but lets the rollback of a failed first create delete it.
"""

from __future__ import annotations

from typing import Any

import pytest

from infra import constants as c
from tests.infra.conftest import Synthesized

# Where data lives: kept on stack deletion and replacement, deleted by a failed first create.
DATA_HOLDERS = {
    (c.SECURITY_STACK, "AWS::KMS::Key"),
    (c.SECURITY_STACK, "AWS::SecretsManager::Secret"),
    (c.DATA_STACK, "AWS::KMS::Key"),
    (c.AUDIT_STACK, "AWS::KMS::Key"),
    (c.AUDIT_STACK, "AWS::S3::Bucket"),
    (c.JOBS_STACK, "AWS::SQS::Queue"),
}


def _of(app: Synthesized, stack: str, resource_type: str) -> dict[str, dict[str, Any]]:
    return app.resources(stack, resource_type)


def test_no_resource_survives_the_rollback_of_its_stacks_first_create(synthesized: Synthesized) -> None:
    kept = [
        f"{stack}/{logical} ({resource['Type']})"
        for stack, logical, resource in synthesized.all_resources()
        if resource.get("DeletionPolicy") == "Retain"
    ]
    assert not kept, "retained even when the first create rolls back: " + "; ".join(kept)


@pytest.mark.parametrize(("stack", "resource_type"), sorted(DATA_HOLDERS))
def test_data_is_retained_on_stack_deletion_and_replacement(real: Synthesized, stack: str, resource_type: str) -> None:
    resources = _of(real, stack, resource_type)
    assert resources
    for logical, resource in resources.items():
        policies = (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy"))
        assert policies == ("RetainExceptOnCreate", "Retain"), f"{stack}/{logical}: {policies}"


def test_fixed_names_that_stay_are_on_resources_a_rollback_deletes(real: Synthesized) -> None:
    """Humans and other stacks address these by name (the audit bucket, queues, the gateway
    and blind-index secrets): the names stay, and a failed first create deletes them."""
    named = {
        (c.AUDIT_STACK, "AWS::S3::Bucket", "BucketName"),
        (c.JOBS_STACK, "AWS::SQS::Queue", "QueueName"),
        (c.SECURITY_STACK, "AWS::SecretsManager::Secret", "Name"),
    }
    for stack, resource_type, name_property in named:
        found = [r for r in _of(real, stack, resource_type).values() if name_property in r["Properties"]]
        assert found, (stack, resource_type)
        assert all(r["DeletionPolicy"] == "RetainExceptOnCreate" for r in found)


def test_log_groups_and_the_alarm_topic_key_go_with_their_stack(synthesized: Synthesized) -> None:
    for stack in synthesized.built.stacks:
        for logical, group in _of(synthesized, stack.stack_name, "AWS::Logs::LogGroup").items():
            assert group.get("DeletionPolicy") == "Delete", f"{stack.stack_name}/{logical}"
    (key,) = _of(synthesized, c.OBSERVABILITY_STACK, "AWS::KMS::Key").values()
    assert key["DeletionPolicy"] == "Delete"
    assert key["Properties"]["PendingWindowInDays"] == 7


def test_aurora_keeps_a_final_snapshot_and_no_deletion_protection_in_the_template(real: Synthesized) -> None:
    (cluster,) = _of(real, c.DATA_STACK, "AWS::RDS::DBCluster").values()
    assert (cluster["DeletionPolicy"], cluster["UpdateReplacePolicy"]) == ("Snapshot", "Snapshot")
    assert "DeletionProtection" not in cluster["Properties"]
