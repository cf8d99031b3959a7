"""Alarms on what must never go unnoticed, and one dashboard."""

from __future__ import annotations

from typing import Any

from infra import constants as c
from infra.app import monitored_functions
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
    assert watched == {NAMES.queue(q.dlq_name) for q in QUEUES}


def test_reconciliation_discrepancies_and_ledger_imbalance_raise_alarms(real: Synthesized) -> None:
    custom = {metric: dims for ns, metric, dims in map(_single_metric, _alarms(real)) if ns == c.METRICS_NAMESPACE}
    assert custom == {
        "ReconciliationDiscrepancies": {"service": "ledgerline"},
        "LedgerImbalance": {"service": "ledgerline"},
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
