from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_apigatewayv2 as apigw
from constructs import Construct

from infra.components.monitoring import Alarms, MonitoredFunction, OperationsDashboard
from infra.constants import Names


class ObservabilityStack(Stack):
    """Alarms and the dashboard. Safe to delete and recreate at any time."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        api: apigw.IHttpApi,
        functions: Sequence[MonitoredFunction],
        dead_letter_queues: Sequence[str],
        alarm_email: str | None,
    ) -> None:
        super().__init__(scope, construct_id, description="Ledgerline alarms and dashboard")
        self.alarms = Alarms(
            self, "Alarms", api=api, functions=functions, dead_letter_queues=dead_letter_queues, alarm_email=alarm_email
        )
        self.dashboard = OperationsDashboard(
            self,
            "Operations",
            name=names.prefix,
            api=api,
            functions=functions,
            dead_letter_queues=dead_letter_queues,
            alarms=self.alarms.alarms,
        )
