"""The OpenAPI 3 document, generated from the route table and the handlers' schemas."""

from __future__ import annotations

import importlib
import json
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

from ledgerline import routes
from ledgerline.errors import PROBLEM_JSON
from ledgerline.http.endpoint import build_resolver

PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}},
        },
    },
}


@cache
def document() -> dict[str, Any]:
    app = build_resolver()
    for route in routes.ROUTES:
        importlib.import_module(route.handler).api.register(app)
    schema = app.get_openapi_json_schema(
        title="Ledgerline API",
        version="1",
        description="Money movement on an immutable double-entry ledger. Errors are application/problem+json.",
        security_schemes={"bearerAuth": HTTPBearer(bearerFormat="JWT")},
    )
    # Plain floats here: the document's numbers are schema bounds (maximum 200), and
    # Decimal would serialise them as strings, which is not OpenAPI.
    doc = json.loads(schema)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    # Every error is a problem+json body (validation included), never powertools' own
    # 422 shape: the document says what the API answers.
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)
    problem = {
        "description": "A problem (RFC 9457) with a stable code",
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for route in routes.ROUTES:
        op = doc["paths"][route.path][route.method.lower()]
        op["responses"].pop("422", None)
        op["responses"].update({"4XX": problem, "5XX": problem})
        op["x-ledgerline-access"] = route.access.value
        if route.money:
            op.setdefault("parameters", []).append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "format": "uuid"},
                }
            )
    return doc
