"""The CDK app: seven stacks, generated from the route, schedule and queue tables.

``cdk synth|deploy`` runs this module (``cdk.json``); ``python -m infra.synth`` builds
the same app without the CDK CLI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App, Stack, Tags

from infra import constants as c
from infra import nag
from infra.assets import PROJECT_ROOT, AssetPaths, prepare_assets
from infra.components.http_api import AUTHORIZER_NAME
from infra.components.monitoring import MonitoredFunction
from infra.settings import InfraSettings
from infra.stacks.api import ApiStack
from infra.stacks.audit import AuditStack
from infra.stacks.data import DataStack
from infra.stacks.jobs import JobsStack
from infra.stacks.network import NetworkStack
from infra.stacks.observability import ObservabilityStack
from infra.stacks.security import SecurityStack
from ledgerline.jobs import QUEUES, SCHEDULES, Queue, Schedule
from ledgerline.routes import ROUTES, Route


@dataclass(frozen=True)
class Tables:
    routes: Sequence[Route] = ROUTES
    schedules: Sequence[Schedule] = SCHEDULES
    queues: Sequence[Queue] = QUEUES


@dataclass(frozen=True)
class LedgerlineApp:
    app: App
    settings: InfraSettings
    tables: Tables
    network: NetworkStack
    security: SecurityStack
    data: DataStack
    audit: AuditStack
    api: ApiStack
    jobs: JobsStack
    observability: ObservabilityStack

    @property
    def stacks(self) -> list[Stack]:
        return [self.network, self.security, self.data, self.audit, self.api, self.jobs, self.observability]


def load_cdk_context(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The ``context`` of cdk.json (feature flags), which the CDK CLI would pass in."""
    path = root / "cdk.json"
    return dict(json.loads(path.read_text()).get("context", {})) if path.is_file() else {}


def build_app(
    *,
    context: Mapping[str, Any] | None = None,
    outdir: str | None = None,
    tables: Tables | None = None,
    assets: AssetPaths | None = None,
    project_root: Path = PROJECT_ROOT,
    checks: bool = True,
) -> LedgerlineApp:
    app = App(context={**load_cdk_context(project_root), **(context or {})}, outdir=outdir)
    if checks:
        nag.add_checks(app)
    settings = InfraSettings.from_context(app.node)
    tables = tables or Tables()
    assets = assets or prepare_assets(project_root)
    names = c.Names(settings.resource_prefix)
    routes = list(tables.routes)
    environment = common_environment(settings)

    network = NetworkStack(app, c.NETWORK_STACK, settings=settings)
    security = SecurityStack(app, c.SECURITY_STACK, names=names)
    data = DataStack(
        app,
        c.DATA_STACK,
        names=names,
        network=network,
        # Deployed before the API exists: the migration knows the issuer only if it is configured.
        environment=environment | ({c.ENV_JWT_ISSUER: settings.jwt_issuer} if settings.jwt_issuer else {}),
        assets=assets,
        project_root=project_root,
        min_capacity=settings.db_min_capacity,
        max_capacity=settings.db_max_capacity,
    )
    audit = AuditStack(app, c.AUDIT_STACK, names=names, security=security, settings=settings)
    api = ApiStack(
        app,
        c.API_STACK,
        routes=routes,
        queue_names=[q.name for q in tables.queues],
        names=names,
        settings=settings,
        network=network,
        security=security,
        data=data,
        audit=audit,
        environment=environment,
        assets=assets,
    )
    jobs = JobsStack(
        app,
        c.JOBS_STACK,
        queues=tables.queues,
        schedules=tables.schedules,
        names=names,
        network=network,
        security=security,
        data=data,
        environment=environment | {c.ENV_JWT_ISSUER: api.issuer},
        assets=assets,
        email_from=settings.email_from,
    )
    observability = ObservabilityStack(
        app,
        c.OBSERVABILITY_STACK,
        names=names,
        api=api.http.api,
        functions=monitored_functions(names, routes, tables),
        dead_letter_queues=[*(names.queue(q.dlq_name) for q in tables.queues), names.jobs_dlq()],
        alarm_email=settings.alarm_email,
    )
    # Addressed by fixed name, not by reference: the order has to be stated.
    api.add_stack_dependency(audit, "functions read the audit bucket by name, its key by alias")
    jobs.add_stack_dependency(audit, "the audit shipper writes the audit bucket by name, its key by alias")
    observability.add_stack_dependency(jobs, "alarms name the jobs stack's functions and queues")
    # The proxy target group's CloudFormation type takes no tags.
    Tags.of(app).add("app", c.APP_NAME, exclude_resource_types=["AWS::RDS::DBProxyTargetGroup"])
    return LedgerlineApp(app, settings, tables, network, security, data, audit, api, jobs, observability)


def common_environment(settings: InfraSettings) -> dict[str, str]:
    """Variables every function gets (the issuer is added where it is known)."""
    return {
        c.ENV_ENVIRONMENT: "aws",
        "POWERTOOLS_SERVICE_NAME": c.POWERTOOLS_SERVICE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
        c.ENV_JWT_AUDIENCE: settings.jwt_audience,
        c.ENV_RESOURCE_PREFIX: settings.resource_prefix,
        **origin_environment(settings),
    }


def origin_environment(settings: InfraSettings) -> dict[str, str]:
    """Who may tell the functions where a request comes from (ledgerline/auth/origin.py):
    proxies the deployer runs in front of API Gateway, and CloudFront; nobody by default."""
    env = {"LEDGERLINE_TRUSTED_PROXIES": ",".join(settings.trusted_proxies)} if settings.trusted_proxies else {}
    return env | ({"LEDGERLINE_TRUST_CLOUDFRONT": "true"} if settings.trust_cloudfront else {})


def monitored_functions(names: c.Names, routes: Sequence[Route], tables: Tables) -> list[MonitoredFunction]:
    return [
        *(MonitoredFunction(names.route_function(r.name), reserved=r.money) for r in routes),
        *(MonitoredFunction(names.consumer_function(q.name), reserved=False) for q in tables.queues),
        *(MonitoredFunction(names.job_function(s.name), reserved=True) for s in tables.schedules),
        MonitoredFunction(names.migration_function(), reserved=False),
        # An authorizer error is a 500 for every route it guards.
        MonitoredFunction(names.route_function(AUTHORIZER_NAME), reserved=False),
    ]


def main() -> None:
    build_app().app.synth()


if __name__ == "__main__":
    main()
