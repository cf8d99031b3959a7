"""Queues with dead-letter queues and their consumers; schedules with the table's expressions."""

from __future__ import annotations

from typing import Any

import pytest

from infra import constants as c
from infra.settings import InfraSettings
from ledgerline.jobs import QUEUES, SCHEDULES, Queue, Schedule
from tests.infra.conftest import Synthesized
from tests.infra.helpers import functions_by_name, ref

JOBS = c.JOBS_STACK
NAMES = c.Names(InfraSettings().resource_prefix)


def _queues(app: Synthesized) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        q["Properties"]["QueueName"]: (logical, q["Properties"])
        for logical, q in app.resources(JOBS, "AWS::SQS::Queue").items()
    }


def _function_id(app: Synthesized, function_name: str) -> str:
    found = [
        logical
        for logical, f in app.resources(JOBS, "AWS::Lambda::Function").items()
        if f["Properties"]["FunctionName"] == function_name
    ]
    assert len(found) == 1, function_name
    return found[0]


def test_there_is_one_queue_and_one_dlq_per_queues_row(real: Synthesized) -> None:
    expected = {NAMES.queue(q.name) for q in QUEUES} | {NAMES.queue(q.dlq_name) for q in QUEUES}
    assert set(_queues(real)) == expected


@pytest.mark.parametrize("row", QUEUES, ids=lambda q: q.name)
def test_queue_redrives_to_its_dlq_after_the_rows_receive_count(real: Synthesized, row: Queue) -> None:
    queues = _queues(real)
    _, queue = queues[NAMES.queue(row.name)]
    dlq_id, dlq = queues[NAMES.queue(row.dlq_name)]
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": row.max_receive_count,
    }
    assert queue["VisibilityTimeout"] == row.visibility_timeout_seconds == 6 * row.consumer_timeout_seconds
    for props in (queue, dlq):
        assert props["SqsManagedSseEnabled"] is True
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_every_queue_denies_requests_without_tls(real: Synthesized) -> None:
    queues = {logical for logical, _ in _queues(real).values()}
    protected = set()
    for policy in real.resources(JOBS, "AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}:
                protected |= {ref(q) for q in policy["Properties"]["Queues"]}
    assert protected == queues


@pytest.mark.parametrize("row", QUEUES, ids=lambda q: q.name)
def test_consumer_reports_partial_batch_failures_and_is_enabled_unless_planned(real: Synthesized, row: Queue) -> None:
    queue_id, _ = _queues(real)[NAMES.queue(row.name)]
    function_id = _function_id(real, NAMES.consumer_function(row.name))
    mappings = [
        m["Properties"]
        for m in real.resources(JOBS, "AWS::Lambda::EventSourceMapping").values()
        if ref(m["Properties"]["EventSourceArn"]) == queue_id
    ]
    assert len(mappings) == 1
    mapping = mappings[0]
    assert ref(mapping["FunctionName"]) == function_id
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == row.batch_size
    assert mapping["Enabled"] is (not row.planned)


@pytest.mark.parametrize("row", QUEUES, ids=lambda q: q.name)
def test_consumer_timeout_stays_below_the_visibility_timeout(real: Synthesized, row: Queue) -> None:
    function = functions_by_name(real, JOBS)[NAMES.consumer_function(row.name)]
    assert function["Handler"] == f"{row.consumer}.handler"
    assert function["Timeout"] == row.consumer_timeout_seconds < row.visibility_timeout_seconds


def test_there_is_one_rule_per_schedules_row(real: Synthesized) -> None:
    rules = real.resources(JOBS, "AWS::Events::Rule")
    assert sorted(r["Properties"]["Name"] for r in rules.values()) == sorted(NAMES.rule(s.name) for s in SCHEDULES)


@pytest.mark.parametrize("row", SCHEDULES, ids=lambda s: s.name)
def test_schedule_has_the_tables_expression_and_targets_its_function(real: Synthesized, row: Schedule) -> None:
    rules = {r["Properties"]["Name"]: r["Properties"] for r in real.resources(JOBS, "AWS::Events::Rule").values()}
    rule = rules[NAMES.rule(row.name)]
    assert rule["ScheduleExpression"] == row.expression
    assert rule["State"] == ("DISABLED" if row.planned else "ENABLED")
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [_function_id(real, NAMES.job_function(row.name)), "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0


@pytest.mark.parametrize("row", SCHEDULES, ids=lambda s: s.name)
def test_job_runs_one_at_a_time_with_the_rows_timeout(real: Synthesized, row: Schedule) -> None:
    function = functions_by_name(real, JOBS)[NAMES.job_function(row.name)]
    assert function["Handler"] == f"{row.handler}.handler"
    assert function["Timeout"] == row.timeout_seconds
    assert function["ReservedConcurrentExecutions"] == 1


def test_jobs_stack_has_exactly_the_consumers_and_jobs_of_the_tables(real: Synthesized) -> None:
    expected = {NAMES.consumer_function(q.name) for q in QUEUES} | {NAMES.job_function(s.name) for s in SCHEDULES}
    assert set(functions_by_name(real, JOBS)) == expected


def test_api_functions_address_queues_by_their_fixed_names(probe: Synthesized) -> None:
    sender = next(r for r in probe.tables.routes if "sqs:gateway-webhooks" in r.grants)
    variables = functions_by_name(probe, c.API_STACK)[NAMES.route_function(sender.name)]["Environment"]["Variables"]
    url = variables[c.queue_url_env("gateway-webhooks")]
    assert NAMES.queue("gateway-webhooks") in str(url)


def test_consumers_and_jobs_get_the_environment_contract(real: Synthesized) -> None:
    for name, function in functions_by_name(real, JOBS).items():
        variables = function["Environment"]["Variables"]
        for variable in (c.ENV_ENVIRONMENT, c.ENV_DB_HOST, c.ENV_DB_NAME, c.ENV_DB_SECRET_ARN, c.ENV_JWT_ISSUER,
                         c.ENV_JWT_AUDIENCE, c.ENV_RESOURCE_PREFIX, "POWERTOOLS_SERVICE_NAME"):  # fmt: skip
            assert variable in variables, f"{name} lacks {variable}"
