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
os.environ.setdefault("LEDGERLINE_RATE_LIMITS", "login=off;otp=off;money=off;default=off;auth=off")
os.environ.setdefault("LEDGERLINE_VELOCITY", "off")

# AWS stand-ins (moto server + the stack's resources) for tests that need them.
if importlib.util.find_spec("tests.fixtures_aws") is not None:
    pytest_plugins = ["tests.fixtures_aws"]


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
    connection.reset_urls()
    if saved is None:
        os.environ.pop("DATABASE_URL", None)
    else:
        os.environ["DATABASE_URL"] = saved
    config.settings.cache_clear()
    testing.drop_database(url)


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
