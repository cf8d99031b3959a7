"""Alarms (to one encrypted SNS topic) and the operations dashboard.

Functions and queues are addressed by their deterministic names (``constants.Names``),
so this construct needs no CloudFormation reference to the stacks that own them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra import constants as c

FIVE_MINUTES = Duration.minutes(5)
ONE_HOUR = Duration.hours(1)
API_5XX_PERCENT = 1


@dataclass(frozen=True)
class MonitoredFunction:
    name: str
    reserved: bool  # reserved concurrency: throttles mean the cap was hit


class Alarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: apigw.IHttpApi,
        functions: Sequence[MonitoredFunction],
        dead_letter_queues: Sequence[str],
        alarm_email: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = self._topic(alarm_email)
        self.alarms: list[cw.Alarm] = []
        self.api_5xx = self._api_5xx(api)
        self.dlq_depth = {name: self._dlq_depth(name) for name in dead_letter_queues}
        self.reconciliation = self._custom_metric(
            "ReconciliationDiscrepancies",
            c.METRIC_RECON_DISCREPANCIES,
            "Sum",
            "Reconciliation found transactions that differ from the gateways' reports",
        )
        self.imbalance = self._custom_metric(
            "LedgerImbalance",
            c.METRIC_LEDGER_IMBALANCE,
            "Maximum",
            "The ledger invariant check found entries that do not sum to zero",
        )
        self.payouts_overdue = self._custom_metric(
            "PayoutsOverdue",
            c.METRIC_PAYOUTS_OVERDUE,
            "Maximum",
            "Payouts the gateways accepted and have not answered past the deadline: their money stays held",
        )
        self._functions(functions)
        self._region_throttles()

    def _topic(self, alarm_email: str | None) -> sns.Topic:
        # Alarm notifications are transient: the key goes with the stack ("safe to recreate").
        key = kms.Key(
            self,
            "TopicKey",
            description="Ledgerline alarm topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        # CloudWatch publishes alarm notifications to the encrypted topic.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=["*"],
            )
        )
        topic = sns.Topic(self, "Topic", display_name="Ledgerline alarms", master_key=key, enforce_ssl=True)
        # enforce_ssl gives the topic a policy of its own (a TLS deny), which replaces SNS's
        # default policy: without this statement CloudWatch could never publish an alarm.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsOfThisAccountPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        if alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        return topic

    def _alarm(self, construct_id: str, description: str, **props: object) -> cw.Alarm:
        alarm = cw.Alarm(self, construct_id, alarm_description=description, **props)  # type: ignore[arg-type]
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        self.alarms.append(alarm)
        return alarm

    def _api_5xx(self, api: apigw.IHttpApi) -> cw.Alarm:
        rate = cw.MathExpression(
            expression="IF(requests > 0, 100 * errors / requests, 0)",
            using_metrics={
                "errors": api.metric_server_error(period=FIVE_MINUTES, statistic="Sum"),
                "requests": api.metric_count(period=FIVE_MINUTES, statistic="Sum"),
            },
            label="5xx %",
            period=FIVE_MINUTES,
        )
        return self._alarm(
            "Api5xxRate",
            f"More than {API_5XX_PERCENT}% of API requests end in a 5xx",
            metric=rate,
            threshold=API_5XX_PERCENT,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )

    def _dlq_depth(self, queue_name: str) -> cw.Alarm:
        return self._alarm(
            f"DlqDepth{c.pascal(queue_name)}",
            f"Messages are waiting in the dead-letter queue {queue_name}",
            metric=dlq_metric(queue_name),
            threshold=0,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )

    def _custom_metric(self, construct_id: str, metric_name: str, statistic: str, description: str) -> cw.Alarm:
        return self._alarm(
            construct_id,
            description,
            metric=app_metric(metric_name, statistic),
            threshold=0,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )

    def _functions(self, functions: Sequence[MonitoredFunction]) -> None:
        for function in functions:
            self._alarm(
                f"Errors{c.pascal(function.name)}",
                f"{function.name} failed",
                metric=lambda_metric(function.name, "Errors"),
                threshold=0,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            if function.reserved:
                self._alarm(
                    f"Throttles{c.pascal(function.name)}",
                    f"{function.name} hit its reserved concurrency",
                    metric=lambda_metric(function.name, "Throttles"),
                    threshold=0,
                    evaluation_periods=1,
                    comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                )

    def _region_throttles(self) -> None:
        # Functions without reserved concurrency throttle only when the account's
        # regional limit is reached, which this aggregate metric shows.
        self._alarm(
            "RegionThrottles",
            "Lambda is throttling in this region (account concurrency limit reached)",
            metric=cw.Metric(namespace="AWS/Lambda", metric_name="Throttles", statistic="Sum", period=FIVE_MINUTES),
            threshold=0,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )


class OperationsDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        api: apigw.IHttpApi,
        functions: Sequence[MonitoredFunction],
        dead_letter_queues: Sequence[str],
        alarms: Sequence[cw.Alarm],
    ) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=name)
        self.dashboard.add_widgets(*self._api_widgets(api))
        self.dashboard.add_widgets(*self._money_widgets(dead_letter_queues))
        self.dashboard.add_widgets(*self._function_widgets(functions))
        self.dashboard.add_widgets(cw.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24))

    @staticmethod
    def _api_widgets(api: apigw.IHttpApi) -> list[cw.IWidget]:
        return [
            cw.GraphWidget(
                title="API requests and errors",
                left=[
                    api.metric_count(period=FIVE_MINUTES),
                    api.metric_client_error(period=FIVE_MINUTES),
                    api.metric_server_error(period=FIVE_MINUTES),
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="API latency",
                left=[
                    api.metric_latency(period=FIVE_MINUTES, statistic="p50"),
                    api.metric_latency(period=FIVE_MINUTES, statistic="p99"),
                ],
                width=12,
            ),
        ]

    @staticmethod
    def _money_widgets(dead_letter_queues: Sequence[str]) -> list[cw.IWidget]:
        return [
            cw.GraphWidget(
                title="Ledger imbalance and reconciliation discrepancies",
                left=[
                    app_metric(c.METRIC_LEDGER_IMBALANCE, "Maximum"),
                    app_metric(c.METRIC_RECON_DISCREPANCIES, "Sum"),
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="Dead-letter queues", left=[dlq_metric(name) for name in dead_letter_queues], width=12
            ),
        ]

    @staticmethod
    def _function_widgets(functions: Sequence[MonitoredFunction]) -> list[cw.IWidget]:
        def graph(title: str, metric: str) -> cw.GraphWidget:
            return cw.GraphWidget(
                title=title,
                left=[lambda_metric(f.name, metric) for f in functions],
                width=12,
                legend_position=cw.LegendPosition.RIGHT,
            )

        return [graph("Lambda errors", "Errors"), graph("Lambda throttles", "Throttles")]


def lambda_metric(function_name: str, metric_name: str) -> cw.Metric:
    return cw.Metric(
        namespace="AWS/Lambda",
        metric_name=metric_name,
        dimensions_map={"FunctionName": function_name},
        statistic="Sum",
        period=FIVE_MINUTES,
        label=function_name,
    )


def dlq_metric(queue_name: str) -> cw.Metric:
    return cw.Metric(
        namespace="AWS/SQS",
        metric_name="ApproximateNumberOfMessagesVisible",
        dimensions_map={"QueueName": queue_name},
        statistic="Maximum",
        period=FIVE_MINUTES,
        label=queue_name,
    )


def app_metric(metric_name: str, statistic: str) -> cw.Metric:
    # Powertools adds the ``service`` dimension to every metric it emits.
    return cw.Metric(
        namespace=c.METRICS_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={"service": c.POWERTOOLS_SERVICE},
        statistic=statistic,
        period=ONE_HOUR,
    )
