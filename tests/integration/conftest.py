"""Fixtures shared by the integration tests."""

import pytest


@pytest.fixture
def crypto_env(aws_endpoint, database_url):
    """Field encryption against the KMS stand-in, with fresh key caches."""
    from ledgerline.crypto import blind, fields

    fields.reset()
    blind.configure(None)
    yield
    fields.reset()


@pytest.fixture(scope="module")
def module_db(database_url):
    """A database of the module's own (a clone of the migrated template): a relay or sweep
    there takes every pending outbox row, and touches no other test's."""
    from ledgerline.db import testing

    url = testing.create_test_database(database_url)
    yield url
    testing.drop_database(url)


@pytest.fixture
def module_app(module_db):
    """A connection factory for the application role on ``module_db``: one connection per
    thread, like the library's; closed after the test."""
    import threading

    from ledgerline.db import connection

    url = connection.with_user(module_db, connection.APP_ROLE)
    local = threading.local()
    opened = []

    def factory():
        conn = getattr(local, "conn", None)
        if conn is None or conn.closed:
            conn = local.conn = connection.connect(url)
            opened.append(conn)
        return conn

    yield factory
    for conn in opened:
        conn.close()
