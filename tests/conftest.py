"""Test set-up: a throwaway database per run on a real PostgreSQL (the embedded one
unless DATABASE_URL is set), cloned from a migrated template."""

from __future__ import annotations

import importlib.util
import os

import pytest

os.environ.setdefault("LEDGERLINE_ENV", "test")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
# Load and concurrency tests must not trip the limits; the tests of the limits set the
# defaults back explicitly.
os.environ.setdefault("LEDGERLINE_RATE_LIMITS", "login=off;otp=off;money=off;default=off;auth=off;webhook=off")
os.environ.setdefault("LEDGERLINE_VELOCITY", "off")

# AWS stand-ins (moto server + the stack's resources) for tests that need them.
if importlib.util.find_spec("tests.fixtures_aws") is not None:
    pytest_plugins = ["tests.fixtures_aws", "tests.fixtures_gateway"]


@pytest.fixture(scope="session")
def database_url():
    """The owner URL of this run's database; the library is pointed at it."""
    from ledgerline import config
    from ledgerline.db import connection, testing
    from ledgerline.local import embedded

    server = os.environ.get("DATABASE_URL") or embedded.ensure_running(config.settings().data_dir)
    url = testing.create_test_database(server)
    saved = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    config.settings.cache_clear()
    connection.reset_urls()
    yield url
    misfiled = _audit_rows_outside_their_category(url)
    connection.reset_urls()
    if saved is None:
        os.environ.pop("DATABASE_URL", None)
    else:
        os.environ["DATABASE_URL"] = saved
    config.settings.cache_clear()
    testing.drop_database(url)
    assert not misfiled, f"audit actions outside the known categories (ledgerline.audit.CATEGORIES): {misfiled}"


def _audit_rows_outside_their_category(url: str) -> list[str]:
    """Every action the whole run audited, from Python or from SQL, against the audit
    trail's namespaces: a new route's action that names no category fails the run here."""
    from ledgerline import audit
    from ledgerline.db.connection import connect

    conn = connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT DISTINCT action, category FROM audit_log")
            seen = cur.fetchall()
    finally:
        conn.close()
    misfiled = []
    for action, category in seen:
        try:
            expected = audit.category_of(action)
        except ValueError:
            expected = None
        if expected != category:
            misfiled.append(f"{action} ({category})")
    return sorted(misfiled)


@pytest.fixture(scope="session")
def app_database_url(database_url):
    from ledgerline.db.connection import app_url

    return app_url()


@pytest.fixture
def owner_conn(database_url):
    from ledgerline.db.connection import connect

    conn = connect(database_url, autocommit=True)
    yield conn
    conn.close()


@pytest.fixture
def app_conn(app_database_url):
    from ledgerline.db.connection import connect

    conn = connect(app_database_url, autocommit=True)
    yield conn
    conn.close()
