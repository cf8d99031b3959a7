"""Property-based fuzzing of every operation of the OpenAPI document (schemathesis).

Each operation gets requests generated from its own schema (valid and invalid), sent
through the local gateway with a real credential of the right kind: an administrator's
OTP-proven token for admin routes, a new user session for the others (so a fuzzed
logout cannot starve the rest). No answer may be a 5xx, and every answer must match
what the document says of its status (errors are problem+json).
"""

from __future__ import annotations

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from ledgerline import routes
from ledgerline.http import openapi
from tests.e2e.conftest import session_token

EXAMPLES_PER_OPERATION = 15
schema = schemathesis.openapi.from_dict(openapi.document())
ROUTES = {(r.method, r.path): r for r in routes.ROUTES}


@pytest.fixture(scope="module")
def user_id():
    from ledgerline.db import transaction
    from ledgerline.ledger.testing import create_user

    return transaction(lambda cur: create_user(cur, "user"))


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_a_server_error_or_breaks_its_document(case, api, admin, user_id, fake_gateway):
    # fake_gateway: routes that ask a gateway before answering (a payout account's name
    # enquiry) reach one; without it they rightly answer 503 gateway_unavailable.
    route = ROUTES[(case.operation.method.upper(), case.operation.path)]
    headers = {}
    if route.access in (routes.Access.ADMIN, routes.Access.AUDITOR):
        headers["Authorization"] = f"Bearer {admin.token}"
    elif not route.public:
        headers["Authorization"] = f"Bearer {session_token(user_id, 'user')}"
    if route.money:
        headers["Idempotency-Key"] = str(uuid.uuid4())

    case.call_and_validate(
        base_url=api, headers=headers, checks=[not_a_server_error, response_schema_conformance], timeout=30
    )
