"""The PgBouncer tier itself: the e2e tests really go through the pooler, and the pooler
refuses what RDS Proxy refuses. Runs only in that tier (``make test`` runs it when
pgbouncer is installed)."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import psycopg2
import pytest

from tests import pgbouncer

pytestmark = pytest.mark.skipif(not os.environ.get(pgbouncer.ENV), reason="the PgBouncer tier only (make test)")


def test_application_connections_go_through_the_pooler(gateway):
    from ledgerline.db import connection, transaction

    assert urlsplit(connection.app_url()).hostname == "127.0.0.1"
    assert (
        transaction(lambda cur: (cur.execute("SELECT current_user AS u"), cur.fetchone())[1])["u"] == "ledgerline_app"
    )


def test_startup_options_are_refused_as_rds_proxy_refuses_them(gateway):
    from ledgerline.db import connection

    with pytest.raises(psycopg2.OperationalError, match="unsupported startup parameter"):
        psycopg2.connect(connection.app_url(), options="-c statement_timeout=1000")


def test_the_application_roles_settings_hold_behind_the_pooler(gateway):
    from ledgerline.db import transaction

    def settings(cur):
        cur.execute("SELECT current_setting('statement_timeout') AS st, current_setting('TimeZone') AS tz")
        return dict(cur.fetchone())

    assert transaction(settings) == {"st": "5s", "tz": "UTC"}
