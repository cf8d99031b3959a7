"""Alarms on what must never go unnoticed, and one dashboard."""

from __future__ import annotations

from typing import Any

from infra import constants as c
from infra.app import monitored_functions
from infra.components.http_api import AUTHORIZER_NAME
from infra.settings import InfraSettings
from ledgerline.jobs import QUEUES
from tests.infra.conftest import Synthesized

OBSERVABILITY = c.OBSERVABILITY_STACK
NAMES = c.Names(InfraSettings().resource_prefix)


def _alarms(app: Synthesized) -> list[dict[str, Any]]:
    return [a["Properties"] for a in app.resources(OBSERVABILITY, "AWS::CloudWatch::Alarm").values()]


def _single_metric(alarm: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(namespace, metric, dimensions) of a one-metric alarm; empty for metric math."""
    metric = alarm
    if "Metrics" in alarm:
        if len(alarm["Metrics"]) != 1:
            return "", "", {}
        metric = alarm["Metrics"][0]["MetricStat"]["Metric"]
    dimensions = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
    return metric.get("Namespace", ""), metric.get("MetricName", ""), dimensions


def test_api_5xx_rate_alarm_divides_errors_by_requests(real: Synthesized) -> None:
    (alarm,) = [a for a in _alarms(real) if len(a.get("Metrics", [])) > 1]
    expression = next(m for m in alarm["Metrics"] if "Expression" in m)
    assert "errors / requests" in expression["Expression"]
    names = {m["MetricStat"]["Metric"]["MetricName"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert names == {"5xx", "Count"}
    assert alarm["AlarmActions"]


def test_each_dlq_has_a_depth_alarm(real: Synthesized) -> None:
    watched = {
        dims["QueueName"]
        for ns, metric, dims in map(_single_metric, _alarms(real))
        if (ns, metric) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    }
    assert watched == {NAMES.queue(q.dlq_name) for q in QUEUES} | {NAMES.jobs_dlq()}


def test_the_scheduled_jobs_dead_letter_queue_raises_an_alarm_on_its_first_message(real: Synthesized) -> None:
    (alarm,) = [a for a in _alarms(real) if _single_metric(a)[2].get("QueueName") == NAMES.jobs_dlq()]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert alarm["AlarmActions"]
    assert NAMES.jobs_dlq() in {
        q["Properties"]["QueueName"] for q in real.resources(c.JOBS_STACK, "AWS::SQS::Queue").values()
    }


def test_cloudwatch_of_this_account_may_publish_to_the_alarm_topic_over_tls_only(real: Synthesized) -> None:
    """enforce_ssl writes a topic policy, which replaces SNS's default one: without an
    explicit allow, CloudWatch could never deliver an alarm."""
    (topic_id,) = real.resources(OBSERVABILITY, "AWS::SNS::Topic")
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in real.resources(OBSERVABILITY, "AWS::SNS::TopicPolicy").values()
        if {"Ref": topic_id} in p["Properties"]["Topics"]
    ]
    (publish,) = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Action"] == "sns:Publish"
    assert publish["Resource"] == {"Ref": topic_id}
    assert publish["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    (deny,) = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_reconciliation_discrepancies_ledger_imbalance_and_overdue_payouts_raise_alarms(real: Synthesized) -> None:
    custom = {metric: dims for ns, metric, dims in map(_single_metric, _alarms(real)) if ns == c.METRICS_NAMESPACE}
    assert custom == {
        "ReconciliationDiscrepancies": {"service": "ledgerline"},
        "LedgerImbalance": {"service": "ledgerline"},
        "PayoutsOverdue": {"service": "ledgerline"},
    }


def test_every_function_has_an_errors_alarm_and_capped_ones_a_throttles_alarm(synthesized: Synthesized) -> None:
    functions = monitored_functions(NAMES, synthesized.tables.routes, synthesized.tables)
    metrics = [_single_metric(a) for a in _alarms(synthesized)]
    errors = {dims["FunctionName"] for ns, metric, dims in metrics if metric == "Errors" and ns == "AWS/Lambda"}
    throttles = {dims.get("FunctionName") for ns, metric, dims in metrics if metric == "Throttles"}
    assert errors == {f.name for f in functions}
    assert throttles == {f.name for f in functions if f.reserved} | {None}  # None: the region-wide alarm


def test_every_alarm_notifies_the_encrypted_topic(real: Synthesized) -> None:
    (topic_id,) = real.resources(OBSERVABILITY, "AWS::SNS::Topic")
    assert "KmsMasterKeyId" in real.resources(OBSERVABILITY, "AWS::SNS::Topic")[topic_id]["Properties"]
    for alarm in _alarms(real):
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_there_is_one_dashboard(real: Synthesized) -> None:
    real.template(OBSERVABILITY).resource_count_is("AWS::CloudWatch::Dashboard", 1)


def test_every_named_function_of_the_app_has_an_errors_alarm(synthesized: Synthesized) -> None:
    # Read from the templates, not from the list the alarms are built from: a function
    # added without a MonitoredFunction row (the authorizer once) fails here.
    stacks = (c.API_STACK, c.JOBS_STACK, c.DATA_STACK)
    named = {
        function["Properties"]["FunctionName"]
        for stack in stacks
        for function in synthesized.resources(stack, "AWS::Lambda::Function").values()
        if isinstance(function["Properties"].get("FunctionName"), str)
    }
    metrics = [_single_metric(a) for a in _alarms(synthesized)]
    alarmed = {dims["FunctionName"] for ns, metric, dims in metrics if metric == "Errors" and ns == "AWS/Lambda"}
    assert NAMES.route_function(AUTHORIZER_NAME) in named and named - alarmed == set()
