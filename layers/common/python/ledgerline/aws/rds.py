"""RDS IAM authentication: the token that stands in for a database password.

A token is a SigV4-presigned request, made locally from the function's credentials (no
network call), valid for 15 minutes, and needed only while a connection is opened. The
role needs ``rds-db:connect`` for the proxy's database user.
"""

from __future__ import annotations

from ledgerline.aws import clients
from ledgerline.config import settings


def auth_token(*, host: str, port: int, user: str) -> str:
    return str(
        clients.client("rds").generate_db_auth_token(
            DBHostname=host, Port=port, DBUsername=user, Region=settings().aws_region
        )
    )
