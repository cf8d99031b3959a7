"""Deploy-time knobs, read from CDK context (``cdk deploy -c auditRetentionDays=2555``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

from constructs import Node

from infra.constants import INTERFACE_ENDPOINTS
from ledgerline.config import parse_networks

# context key → field name; every field can be overridden with ``-c <key>=<value>``.
_CONTEXT_KEYS = {
    "resourcePrefix": "resource_prefix",
    "auditRetentionDays": "audit_retention_days",
    "jwtIssuer": "jwt_issuer",
    "jwtAudience": "jwt_audience",
    "natGateways": "nat_gateways",
    "apiRateLimit": "api_rate_limit",
    "apiBurstLimit": "api_burst_limit",
    "moneyRateLimit": "money_rate_limit",
    "moneyBurstLimit": "money_burst_limit",
    "moneyReservedConcurrency": "money_reserved_concurrency",
    "dbMinCapacity": "db_min_capacity",
    "dbMaxCapacity": "db_max_capacity",
    "athenaBytesScannedCutoff": "athena_bytes_scanned_cutoff",
    "alarmEmail": "alarm_email",
    "bastion": "bastion",
    "emailFrom": "email_from",
    "interfaceEndpoints": "interface_endpoints",
    "trustedProxies": "trusted_proxies",
    "trustCloudFront": "trust_cloudfront",
}
# Keys that no longer do anything: refused with what to do instead, not silently ignored.
_REMOVED_KEYS = {
    "apiPublicRoutesOnly": "the API deploys in one step now (a Lambda authorizer reads no discovery "
    "document): drop -c apiPublicRoutesOnly and run `cdk deploy --all`",
}


@dataclass(frozen=True)
class InfraSettings:
    resource_prefix: str = "ledgerline"
    audit_retention_days: int = 400
    # None: the API's own execute-api URL. Only compared with tokens' iss; nothing is
    # fetched from it at deploy time (the Lambda authorizer holds no discovery document).
    jwt_issuer: str | None = None
    jwt_audience: str = "ledgerline-api"
    nat_gateways: int = 1
    api_rate_limit: int = 200  # requests/second for the whole stage
    api_burst_limit: int = 400
    money_rate_limit: int = 20  # per money-moving route
    money_burst_limit: int = 40
    # Per money route: caps database connections a burst can open through the proxy.
    money_reserved_concurrency: int = 10
    db_min_capacity: float = 0.5
    db_max_capacity: float = 8
    athena_bytes_scanned_cutoff: int = 10 * 1024**3
    alarm_email: str | None = None
    # The verified SES identity notifications are sent from (functions with grant ses:send).
    email_from: str | None = None
    # An SSM-only host in the app subnets for operator database access (README, "Deploy to AWS").
    bastion: bool = False
    # Interface VPC endpoints (service short names, "kms,sqs"); drop one a region lacks.
    interface_endpoints: tuple[str, ...] = INTERFACE_ENDPOINTS
    # Proxies run in front of API Gateway (CIDRs): only their X-Forwarded-For hops are
    # believed (LEDGERLINE_TRUSTED_PROXIES). CloudFront in front: its viewer headers are.
    trusted_proxies: tuple[str, ...] = ()
    trust_cloudfront: bool = False

    @classmethod
    def from_context(cls, node: Node) -> InfraSettings:
        for key, instead in _REMOVED_KEYS.items():
            if node.try_get_context(key) is not None:
                raise ValueError(f"context {key} was removed: {instead}")
        values: dict[str, Any] = {}
        types = {f.name: f.type for f in fields(cls)}
        for key, name in _CONTEXT_KEYS.items():
            raw = node.try_get_context(key)
            if raw is not None:
                values[name] = _coerce(key, raw, str(types[name]))
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.audit_retention_days < 1:
            raise ValueError(f"auditRetentionDays is {self.audit_retention_days}; it must be at least 1 day")
        if not 0 <= self.db_min_capacity <= self.db_max_capacity:
            raise ValueError(
                f"dbMinCapacity ({self.db_min_capacity}) must be between 0 and dbMaxCapacity ({self.db_max_capacity})"
            )
        if self.email_from and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", self.email_from):
            raise ValueError(f"emailFrom {self.email_from!r}: expected an e-mail address such as no-reply@example.com")
        unknown = [name for name in self.interface_endpoints if not re.fullmatch(r"[a-z][a-z0-9.-]*", name)]
        if unknown:
            raise ValueError(
                f"interfaceEndpoints {','.join(unknown)}: use service short names such as "
                f"{','.join(INTERFACE_ENDPOINTS)} (com.amazonaws.<region>.<name>)"
            )
        parse_networks(",".join(self.trusted_proxies))  # a malformed CIDR fails the synth, not a login
        if self.trust_cloudfront and not self.trusted_proxies:
            raise ValueError(
                "trustCloudFront needs trustedProxies: CloudFront's origin-facing ranges (the managed prefix "
                "list com.amazonaws.global.cloudfront.origin-facing), so that a client calling the API "
                "directly cannot send CloudFront's viewer headers and be believed"
            )
        if not re.fullmatch(r"[a-z][a-z0-9-]{1,23}", self.resource_prefix):
            raise ValueError(
                f"resourcePrefix {self.resource_prefix!r}: use 2-24 lowercase letters, digits and '-', "
                "starting with a letter (it becomes part of bucket, queue and function names)"
            )


def _coerce(key: str, raw: Any, type_name: str) -> Any:
    text = str(raw).strip()
    try:
        if type_name.startswith("bool"):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if type_name.startswith("int"):
            return int(text)
        if type_name.startswith("float"):
            return float(text)
        if type_name.startswith("tuple"):
            return tuple(item.strip() for item in text.split(",") if item.strip())
    except ValueError:
        raise ValueError(f"context {key}={raw!r}: expected {type_name.split(' ')[0]}") from None
    return text or None
