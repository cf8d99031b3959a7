"""Configuration: read once from the environment, at start.

Every setting has one name here. The CDK stacks set these variables on the Lambdas and
the local stack sets them for its processes, so the handlers never guess.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

# layers/common/python/ledgerline/config.py → the repository root (in a Lambda layer,
# /opt/python/ledgerline, there is no repository and nothing reads it).
_HERE = Path(__file__).resolve()
PROJECT_ROOT = _HERE.parents[4] if len(_HERE.parents) > 4 else _HERE.parent

DEFAULT_RATE_LIMITS = "login=5/minute;otp=3/minute;money=10/minute;default=50/hour;auth=20/minute"
DEFAULT_VELOCITY = "20/60s"
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
    # CloudFront-Viewer-Country/-City are believed only when a CloudFront distribution
    # is in front of the API (any client can send the headers otherwise).
    trust_cloudfront: bool = False
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
    )


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")
