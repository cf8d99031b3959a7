"""Configuration: read once from the environment, at start.

Every setting has one name here. The CDK stacks set these variables on the Lambdas and
the local stack sets them for its processes, so the handlers never guess.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

# layers/common/python/ledgerline/config.py → the repository root (in a Lambda layer,
# /opt/python/ledgerline, there is no repository and nothing reads it).
_HERE = Path(__file__).resolve()
PROJECT_ROOT = _HERE.parents[4] if len(_HERE.parents) > 4 else _HERE.parent

DEFAULT_RATE_LIMITS = "login=5/minute;otp=3/minute;money=10/minute;default=50/hour;auth=20/minute;webhook=1200/minute"
DEFAULT_VELOCITY = "20/60s"
# A withdrawal above this needs a second factor: "<amount>" for every currency, then
# optional per-currency amounts ("100000.00;USD=1000.00;KWD=300.000").
DEFAULT_WITHDRAWAL_STEP_UP = "100000.00"
# A payout account in its cooling-off period receives at most this per withdrawal (same format).
DEFAULT_PAYOUT_ACCOUNT_COOLING_LIMIT = "50000.00;USD=500.00;EUR=500.00;GBP=400.00"
# A bulk payout whose total is above this needs one administrator's approval, above the
# second two different administrators' (same format).
DEFAULT_BULK_PAYOUT_APPROVAL_LIMIT = "100000.00;USD=1000.00;EUR=1000.00;GBP=800.00"
DEFAULT_BULK_PAYOUT_TWO_PERSON_LIMIT = "5000000.00;USD=50000.00;EUR=50000.00;GBP=40000.00"
_PERIODS = {"s": 1, "second": 1, "m": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


@dataclass(frozen=True)
class Limit:
    count: int
    period_seconds: int


def parse_limit(text: str) -> Limit | None:
    """``5/minute`` or ``20/60s`` → Limit; ``off`` → None (disabled)."""
    text = text.strip().lower()
    if text == "off":
        return None
    m = re.fullmatch(r"(\d+)/(\d*)\s*([a-z]+)", text)
    if not m or m.group(3) not in _PERIODS:
        raise ValueError(f"bad limit {text!r}: expected like '5/minute', '20/60s' or 'off'")
    return Limit(int(m.group(1)), int(m.group(2) or 1) * _PERIODS[m.group(3)])


def parse_rate_limits(text: str) -> dict[str, Limit | None]:
    out: dict[str, Limit | None] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, value = part.partition("=")
        out[name.strip()] = parse_limit(value)
    return out


@dataclass(frozen=True)
class Settings:
    environment: str  # "local" | "test" | "aws"
    database_url: str | None  # owner/migrator connection; None = embedded pgserver
    app_database_url: str | None  # application-role connection; derived when None
    data_dir: Path
    api_port: int
    statement_timeout_ms: int  # the application role's, set on the role by the migrator
    jwt_issuer: str
    jwt_audience: str
    aws_endpoint_url: str | None  # moto server locally; None in AWS
    aws_region: str
    resource_prefix: str  # names of queues, bucket, secrets, key aliases
    rate_limits: dict[str, Limit | None] = field(default_factory=dict)
    velocity: Limit | None = None
    # CloudFront-Viewer-Address/-Country/-City are believed only when a CloudFront
    # distribution is in front of the API, and only on requests from trusted_proxies (list
    # CloudFront's origin-facing ranges there): any client can send the headers otherwise.
    trust_cloudfront: bool = False
    # X-Forwarded-For is believed only hop by hop from these networks (a load balancer or
    # proxy the deployment runs in front): LEDGERLINE_TRUSTED_PROXIES, comma-separated CIDRs.
    trusted_proxies: tuple[str, ...] = ()
    # A MaxMind-format database (.mmdb, e.g. GeoLite2-City) a deployer provides; without
    # it the country comes from the offline data the iptocc wheel ships (no city).
    geoip_mmdb: Path | None = None
    # A session unused this long needs a new login (PCI DSS 8.2.8: 15 minutes at most):
    # refused at refresh, which ends it, and at admission (ledgerline.auth.sessions).
    session_idle_minutes: int = 15
    # In AWS the functions reach the database through RDS Proxy with IAM authentication
    # (a token signed per connection, no password anywhere) and verify its certificate.
    db_host: str | None = None  # the proxy endpoint
    db_port: int = 5432
    db_name: str = "ledgerline"
    db_user: str = "ledgerline_app"
    db_owner_user: str | None = None  # the migrator's login (the cluster's master user)
    db_iam_auth: bool = False
    db_sslrootcert: str | None = None  # CA bundle; default: botocore's (Amazon Root CAs)
    db_tunnel: str | None = None  # "127.0.0.1:15432": an operator's port forward to the proxy
    # Migrations may rewrite big tables, but must not queue behind live traffic for long.
    migration_statement_timeout_ms: int = 15 * 60 * 1000
    migration_lock_timeout_ms: int = 10_000
    # Relayed outbox rows are kept this many days (at least 1) for an operator's
    # questions, then the outbox-purge job deletes them.
    outbox_retention_days: int = 7
    # Merchant webhook URLs may resolve to private, loopback or link-local addresses (and
    # use plain http) only on a laptop: in AWS that would be SSRF into the VPC.
    allow_private_webhook_targets: bool = False
    # Payment gateways: base URLs by provider (locally the fake gateway's), and every
    # call's timeout and bounded retries (ledgerline/gateways/http.py).
    gateway_urls: dict[str, str] = field(default_factory=dict)
    gateway_timeout_seconds: float = 5.0  # 3 attempts fit in API Gateway's 29 s
    gateway_retries: int = 2
    fake_gateway_port: int = 3100
    fake_gateway_webhook_url: str | None = None  # where the fake delivers; default the local API
    flutterwave_webhook_schemes: tuple[str, ...] = ("verif-hash", "signature")
    # Withdrawals: the step-up threshold by currency ("*": any other), and the gateway
    # that pays out when a request names none.
    withdrawal_step_up: dict[str, Decimal] = field(default_factory=lambda: parse_step_up(DEFAULT_WITHDRAWAL_STEP_UP))
    payout_provider: str = "paystack"
    # A payout the gateway accepted and has not answered for this many minutes is asked
    # about (payouts-status: a webhook may be lost; its money stays held until it answers);
    # one still pending after this many hours is logged as an error for a human.
    payout_status_after_minutes: int = 60
    payout_overdue_hours: int = 72
    # Payout accounts (issue 19): one added less than this many hours ago cannot receive a
    # withdrawal above the limit of its currency (the step-up's format; an account-takeover
    # defence); 0 hours: no cooling-off.
    payout_account_cooling_hours: int = 24
    payout_account_cooling_limit: dict[str, Decimal] = field(
        default_factory=lambda: parse_step_up(DEFAULT_PAYOUT_ACCOUNT_COOLING_LIMIT)
    )
    # Bulk payouts (issue 19): a total above the first needs an administrator's approval,
    # above the second two different administrators' (ASVS 2.3.5); the step-up's format.
    bulk_payout_approval_limit: dict[str, Decimal] = field(
        default_factory=lambda: parse_step_up(DEFAULT_BULK_PAYOUT_APPROVAL_LIMIT)
    )
    bulk_payout_two_person_limit: dict[str, Decimal] = field(
        default_factory=lambda: parse_step_up(DEFAULT_BULK_PAYOUT_TWO_PERSON_LIMIT)
    )
    # ... and one of more items than this needs an administrator too, whatever its total:
    # many payees at once is itself worth a second look, and approving in the request
    # would capture every hold in the request's own statement (its time budget).
    bulk_payout_approval_items: int = 100
    # Reconciliation: who is e-mailed about a run's discrepancies, and how far past each
    # side of a UTC day the ledger's payments are matched against that day's report.
    finance_email: str = "finance@ledgerline.local"
    reconcile_grace_minutes: int = 30
    # Escrow: how long after an escrow is funded its buyer or seller may dispute it.
    dispute_window_days: int = 30
    # Dispute evidence documents: the largest accepted (bytes), and how long a presigned
    # upload stays valid (seconds).
    evidence_max_bytes: int = 10 * 1024 * 1024
    evidence_upload_seconds: int = 900

    @property
    def local(self) -> bool:
        return self.environment in ("local", "test")


@cache
def settings() -> Settings:
    env = os.environ
    rate_limits = parse_rate_limits(DEFAULT_RATE_LIMITS)
    rate_limits.update(parse_rate_limits(env.get("LEDGERLINE_RATE_LIMITS", "")))
    return Settings(
        environment=env.get("LEDGERLINE_ENV", "local"),
        database_url=env.get("DATABASE_URL") or None,
        app_database_url=env.get("LEDGERLINE_APP_DATABASE_URL") or None,
        data_dir=Path(env.get("LEDGERLINE_DATA_DIR", PROJECT_ROOT / ".data")),
        api_port=int(env.get("LEDGERLINE_API_PORT", "3000")),
        statement_timeout_ms=int(env.get("LEDGERLINE_STATEMENT_TIMEOUT_MS", "5000")),
        jwt_issuer=env.get("LEDGERLINE_JWT_ISSUER", "https://ledgerline.local"),
        jwt_audience=env.get("LEDGERLINE_JWT_AUDIENCE", "ledgerline-api"),
        aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        aws_region=env.get("AWS_REGION", env.get("AWS_DEFAULT_REGION", "eu-west-1")),
        resource_prefix=env.get("LEDGERLINE_RESOURCE_PREFIX", "ledgerline"),
        rate_limits=rate_limits,
        velocity=parse_limit(env.get("LEDGERLINE_VELOCITY", DEFAULT_VELOCITY)),
        trust_cloudfront=_flag(env.get("LEDGERLINE_TRUST_CLOUDFRONT")),
        trusted_proxies=parse_networks(env.get("LEDGERLINE_TRUSTED_PROXIES", "")),
        geoip_mmdb=Path(env["LEDGERLINE_GEOIP_MMDB"]) if env.get("LEDGERLINE_GEOIP_MMDB") else None,
        session_idle_minutes=max(1, int(env.get("LEDGERLINE_SESSION_IDLE_MINUTES", "15"))),
        db_host=env.get("LEDGERLINE_DB_HOST") or None,
        db_port=int(env.get("LEDGERLINE_DB_PORT", "5432")),
        db_name=env.get("LEDGERLINE_DB_NAME", "ledgerline"),
        db_user=env.get("LEDGERLINE_DB_USER", "ledgerline_app"),
        db_owner_user=env.get("LEDGERLINE_DB_OWNER_USER") or None,
        db_iam_auth=_flag(env.get("LEDGERLINE_DB_IAM_AUTH")),
        db_sslrootcert=env.get("LEDGERLINE_DB_SSLROOTCERT") or None,
        db_tunnel=env.get("LEDGERLINE_DB_TUNNEL") or None,
        migration_statement_timeout_ms=int(env.get("LEDGERLINE_MIGRATION_STATEMENT_TIMEOUT_MS", str(15 * 60 * 1000))),
        migration_lock_timeout_ms=int(env.get("LEDGERLINE_MIGRATION_LOCK_TIMEOUT_MS", "10000")),
        outbox_retention_days=max(1, int(env.get("LEDGERLINE_OUTBOX_RETENTION_DAYS", "7"))),
        allow_private_webhook_targets=_flag(
            env.get(
                "LEDGERLINE_ALLOW_PRIVATE_WEBHOOK_TARGETS",
                "true" if env.get("LEDGERLINE_ENV", "local") in ("local", "test") else "false",
            )
        ),
        gateway_urls=_gateway_urls(env),
        gateway_timeout_seconds=float(env.get("LEDGERLINE_GATEWAY_TIMEOUT_SECONDS", "5")),
        gateway_retries=int(env.get("LEDGERLINE_GATEWAY_RETRIES", "2")),
        fake_gateway_port=int(env.get("LEDGERLINE_FAKE_GATEWAY_PORT", "3100")),
        fake_gateway_webhook_url=env.get("LEDGERLINE_FAKE_GATEWAY_WEBHOOK_URL") or None,
        flutterwave_webhook_schemes=tuple(
            s.strip() for s in env.get("LEDGERLINE_FLUTTERWAVE_WEBHOOK_SCHEMES", "verif-hash,signature").split(",")
        ),
        withdrawal_step_up=parse_step_up(env.get("LEDGERLINE_WITHDRAWAL_STEP_UP", DEFAULT_WITHDRAWAL_STEP_UP)),
        payout_provider=env.get("LEDGERLINE_PAYOUT_PROVIDER", "paystack"),
        payout_status_after_minutes=max(1, int(env.get("LEDGERLINE_PAYOUT_STATUS_AFTER_MINUTES", "60"))),
        payout_overdue_hours=max(1, int(env.get("LEDGERLINE_PAYOUT_OVERDUE_HOURS", "72"))),
        payout_account_cooling_hours=max(0, int(env.get("LEDGERLINE_PAYOUT_ACCOUNT_COOLING_HOURS", "24"))),
        payout_account_cooling_limit=parse_step_up(
            env.get("LEDGERLINE_PAYOUT_ACCOUNT_COOLING_LIMIT", DEFAULT_PAYOUT_ACCOUNT_COOLING_LIMIT)
        ),
        bulk_payout_approval_limit=parse_step_up(
            env.get("LEDGERLINE_BULK_PAYOUT_APPROVAL_LIMIT", DEFAULT_BULK_PAYOUT_APPROVAL_LIMIT)
        ),
        bulk_payout_two_person_limit=parse_step_up(
            env.get("LEDGERLINE_BULK_PAYOUT_TWO_PERSON_LIMIT", DEFAULT_BULK_PAYOUT_TWO_PERSON_LIMIT)
        ),
        bulk_payout_approval_items=max(0, int(env.get("LEDGERLINE_BULK_PAYOUT_APPROVAL_ITEMS", "100"))),
        finance_email=env.get("LEDGERLINE_FINANCE_EMAIL", "finance@ledgerline.local"),
        reconcile_grace_minutes=int(env.get("LEDGERLINE_RECONCILE_GRACE_MINUTES", "30")),
        dispute_window_days=max(1, int(env.get("LEDGERLINE_DISPUTE_WINDOW_DAYS", "30"))),
        evidence_max_bytes=int(env.get("LEDGERLINE_EVIDENCE_MAX_BYTES", str(10 * 1024 * 1024))),
        evidence_upload_seconds=int(env.get("LEDGERLINE_EVIDENCE_UPLOAD_SECONDS", "900")),
    )


# In AWS the providers' own hosts; locally (and in tests) the fake gateway's, one path prefix
# per provider. LEDGERLINE_<PROVIDER>_URL overrides either.
GATEWAY_URLS = {
    "paystack": "https://api.paystack.co",
    "stripe": "https://api.stripe.com",
    "flutterwave": "https://api.flutterwave.com",
}


def _gateway_urls(env: Mapping[str, str]) -> dict[str, str]:
    local = env.get("LEDGERLINE_ENV", "local") in ("local", "test")
    fake = f"http://127.0.0.1:{int(env.get('LEDGERLINE_FAKE_GATEWAY_PORT', '3100'))}"
    return {
        provider: env.get(f"LEDGERLINE_{provider.upper()}_URL") or (f"{fake}/{provider}" if local else real)
        for provider, real in GATEWAY_URLS.items()
    }


def parse_step_up(text: str) -> dict[str, Decimal]:
    """``100000.00;USD=1000.00`` → {"*": 100000.00, "USD": 1000.00}: a bare amount is every
    other currency's."""
    out: dict[str, Decimal] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        currency, _, amount = part.rpartition("=")
        key = currency.strip().upper() or "*"
        try:
            value = Decimal(amount.strip())
        except InvalidOperation:
            raise ValueError(f"bad withdrawal step-up {part!r}: expected like '100000.00' or 'USD=1000.00'") from None
        if not value.is_finite() or value < 0 or not (key == "*" or re.fullmatch(r"[A-Z]{3}", key)):
            raise ValueError(f"bad withdrawal step-up {part!r}: expected like '100000.00' or 'USD=1000.00'")
        out[key] = value
    return out


def parse_networks(text: str) -> tuple[str, ...]:
    """``10.0.0.0/8, 192.0.2.7`` → their normal forms; a malformed one fails at start."""
    import ipaddress

    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            out.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise ValueError(f"bad trusted proxy {part!r}: expected an address or a CIDR like 10.0.0.0/8") from None
    return tuple(out)


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")
