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
