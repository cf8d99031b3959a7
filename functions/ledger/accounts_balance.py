"""GET /v1/accounts/{id}/balance?at=: the posted balance now or at a past instant."""

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from ledgerline import errors, ledger
from ledgerline.db import transaction
from ledgerline.http import Endpoint, json_response
from ledgerline.ledger.access import read_scope

api = Endpoint(__name__)


@api
def get_balance(id: str, at: Annotated[str | None, Query(description="RFC 3339 instant; default now")] = None):
    scope = read_scope(api.request.require_principal())
    when = _instant(at)
    report = transaction(lambda cur: ledger.query_balance(cur, id, at=when, owner_id=scope, actor=api.request.actor))
    return json_response(report)


def _instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise errors.ValidationFailed(
            f"at {text!r} is not an RFC 3339 time",
            errors=[errors.FieldError("at", "use e.g. 2024-05-01T12:00:00Z")],
        ) from None


handler = api.handler
