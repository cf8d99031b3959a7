"""The local AWS stand-in for tests: one moto server per test session, bootstrapped.

Loaded through ``pytest_plugins = ["tests.fixtures_aws"]`` in tests/conftest.py.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def aws_endpoint(tmp_path_factory):
    """The URL of a bootstrapped moto server; boto3 and ``ledgerline.aws`` point at it."""
    from ledgerline.local import aws

    server = aws.start(aws.free_port(), log_file=tmp_path_factory.mktemp("moto") / "moto.log")
    previous = aws.point_library_at(server.endpoint_url)
    try:
        aws.bootstrap(server.endpoint_url)
        yield server.endpoint_url
    finally:
        aws.restore_environment(previous)
        server.stop()
