"""Queues with dead-letter queues and their consumers; schedules with the table's expressions."""

from __future__ import annotations

from typing import Any

import pytest

from infra import constants as c
from infra.components.schedules import JobTiming, shortest_interval
from infra.settings import InfraSettings
from ledgerline.jobs import QUEUES, SCHEDULES, Queue, Schedule
from tests.infra.conftest import Synthesized
from tests.infra.helpers import as_list, functions_by_name, policy_statements, ref

JOBS = c.JOBS_STACK
NAMES = c.Names(InfraSettings().resource_prefix)
JITTER = int(c.JOB_START_JITTER.to_seconds())


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


def test_there_is_one_queue_and_one_dlq_per_queues_row_and_one_dlq_for_the_jobs(real: Synthesized) -> None:
    expected = {NAMES.queue(q.name) for q in QUEUES} | {NAMES.queue(q.dlq_name) for q in QUEUES}
    assert set(_queues(real)) == expected | {NAMES.jobs_dlq()}


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
def test_consumer_concurrency_is_capped_so_a_burst_cannot_take_every_proxy_connection(
    real: Synthesized, row: Queue
) -> None:
    queue_id, _ = _queues(real)[NAMES.queue(row.name)]
    (mapping,) = [
        m["Properties"]
        for m in real.resources(JOBS, "AWS::Lambda::EventSourceMapping").values()
        if ref(m["Properties"]["EventSourceArn"]) == queue_id
    ]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": row.max_concurrency}
    assert 2 <= row.max_concurrency <= 1000


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


def _jobs_dlq_id(app: Synthesized) -> str:
    return _queues(app)[NAMES.jobs_dlq()][0]


def _interval(row: Schedule) -> int:
    return int(shortest_interval(row.expression).total_seconds())


@pytest.mark.parametrize("row", SCHEDULES, ids=lambda s: s.name)
def test_schedule_target_retries_deliveries_and_dead_letters_what_it_cannot_deliver(
    real: Synthesized, row: Schedule
) -> None:
    rules = {r["Properties"]["Name"]: r["Properties"] for r in real.resources(JOBS, "AWS::Events::Rule").values()}
    (target,) = rules[NAMES.rule(row.name)]["Targets"]
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [_jobs_dlq_id(real), "Arn"]}}
    policy = target["RetryPolicy"]
    age = policy["MaximumEventAgeInSeconds"]
    # A late delivery still ends before the next tick (EventBridge's floor is 60 s).
    assert age >= 60 and (age == 60 or age + row.timeout_seconds + JITTER <= _interval(row))
    assert policy["MaximumRetryAttempts"] == JobTiming.of(row).retry_attempts


@pytest.mark.parametrize("row", SCHEDULES, ids=lambda s: s.name)
def test_failed_runs_are_retried_only_where_retries_end_before_the_next_tick(real: Synthesized, row: Schedule) -> None:
    function_id = _function_id(real, NAMES.job_function(row.name))
    (config,) = [
        c_["Properties"]
        for c_ in real.resources(JOBS, "AWS::Lambda::EventInvokeConfig").values()
        if c_["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    assert config["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [_jobs_dlq_id(real), "Arn"]}}}
    retries = config["MaximumRetryAttempts"]
    assert retries in (0, 2)
    runs_with_waits = (retries + 1) * row.timeout_seconds + (180 if retries else 0)
    assert runs_with_waits + JITTER <= _interval(row), "a retry would overlap the next tick (a throttle)"
    if _interval(row) >= 3600:
        assert retries == 2, "hourly and daily jobs retry a failed run"
    age = config["MaximumEventAgeInSeconds"]
    assert 60 <= age <= 6 * 3600
    assert age == 60 or age + row.timeout_seconds + JITTER <= _interval(row), "a late start would overlap"
    last_retry_starts = retries * row.timeout_seconds + (180 if retries else 0)
    assert age >= last_retry_starts, "the retries fit in the event's age"
    actions = {
        a
        for s in policy_statements(real, JOBS, ref(functions_by_name(real, JOBS)[NAMES.job_function(row.name)]["Role"]))
        if {"Fn::GetAtt": [_jobs_dlq_id(real), "Arn"]} in as_list(s["Resource"])
        for a in as_list(s["Action"])
    }
    assert "sqs:SendMessage" in actions


@pytest.mark.parametrize("row", SCHEDULES, ids=lambda s: s.name)
def test_job_timeout_ends_the_run_before_the_next_tick_can_come(real: Synthesized, row: Schedule) -> None:
    """Reserved concurrency 1: a tick that finds the last run still going is a throttle."""
    function = functions_by_name(real, JOBS)[NAMES.job_function(row.name)]
    assert function["Timeout"] + JITTER <= _interval(row)


def test_a_job_whose_timeout_overlaps_its_next_tick_is_refused_with_what_to_do() -> None:
    row = Schedule("slow", "rate(1 minute)", "functions.jobs.slow", "too slow", 60)
    with pytest.raises(ValueError, match=r"slow: timeout_seconds=60 .* at most 45 s"):
        JobTiming.of(row)


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(2 hours)", 7200), ("cron(30 2 * * ? *)", 86400),
     ("cron(0/15 * * * ? *)", 900), ("cron(0 9,10 ? * MON-FRI *)", 3600)],
)  # fmt: skip
def test_shortest_interval_of_rates_and_crons(expression: str, seconds: int) -> None:
    assert shortest_interval(expression).total_seconds() == seconds


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
        for variable in (c.ENV_ENVIRONMENT, c.ENV_DB_HOST, c.ENV_DB_NAME, c.ENV_DB_USER, c.ENV_DB_IAM_AUTH,
                         c.ENV_JWT_ISSUER, c.ENV_JWT_AUDIENCE, c.ENV_RESOURCE_PREFIX, "POWERTOOLS_SERVICE_NAME"):  # fmt: skip
            assert variable in variables, f"{name} lacks {variable}"
        assert (variables[c.ENV_DB_USER], variables[c.ENV_DB_IAM_AUTH]) == (c.DB_APP_USER, "true"), name
        assert c.ENV_DB_SECRET_ARN not in variables, f"{name}: no database secret outside the migration"
