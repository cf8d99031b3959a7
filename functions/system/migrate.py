"""CloudFormation custom resource (CDK provider framework): apply migrations on deploy.

The data stack calls this on Create, and on Update whenever the hash of the migration
SQL files changes. It connects through RDS Proxy as the master user
(``LEDGERLINE_DB_OWNER_USER``, IAM authentication) and sets the application role's
password from the application secret (``LEDGERLINE_DB_SECRET_ARN``): that password is
what the proxy itself uses to reach the database as the application role.

A rollback calls Update again with the previous code, which then meets a database that
already has the newer migrations: that is accepted as it is (migrations are forward-only
and additive), so a rollback never wedges the stack. Delete does nothing: dropping a
stack never drops the ledger.

Provider-framework protocol: return ``PhysicalResourceId`` (and ``Data``); raise to fail
the deployment, which CloudFormation then rolls back.
"""

import os
from typing import Any

from ledgerline.aws import secrets
from ledgerline.db.connection import owner_url
from ledgerline.db.migrate import migrate
from ledgerline.observability import logger

PHYSICAL_ID = "ledgerline-schema"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = event.get("RequestType")
    physical_id = event.get("PhysicalResourceId") or PHYSICAL_ID
    logger.set_correlation_id(event.get("RequestId"))
    if request == "Delete":
        logger.info("migration resource deleted; schema left in place")
        return {"PhysicalResourceId": physical_id}
    app_secret = secrets.get_json(os.environ["LEDGERLINE_DB_SECRET_ARN"], max_age=0)
    applied = migrate(owner_url(), app_password=str(app_secret["password"]), allow_newer_database=True)
    logger.info("migrations applied", extra={"request": request, "applied": applied})
    return {"PhysicalResourceId": physical_id, "Data": {"Applied": ",".join(applied) or "none"}}
