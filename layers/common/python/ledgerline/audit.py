"""The audit trail's write path.

``record`` runs inside the caller's transaction, so an action and its audit row commit
or roll back together. Chaining and shipping happen later, in the audit shipper.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ledgerline.db import Cursor

# The five categories of the audit trail (docs/design.md), by action namespace.
CATEGORIES = {
    "auth": "auth",  # authentication and access
    "user": "auth",
    "api_key": "auth",
    "webhook_endpoint": "auth",  # a merchant's signed-delivery target and its secret
    "ledger": "financial",
    "transfer": "financial",
    "hold": "financial",
    "payment": "financial",
    "withdrawal": "financial",
    "payout_account": "financial",  # a payment method added / removed (issue 19)
    "bulk_payout": "financial",  # a bulk operation: payroll-style payouts (issue 19)
    "idempotency": "financial",
    "reconciliation": "financial",  # a run requested, a discrepancy explained or resolved
    "invoice": "invoices",
    "order": "invoices",
    "escrow": "escrow",
    "dispute": "escrow",
    "admin": "admin",
    "config": "admin",
    "keys": "admin",
    "audit": "admin",  # reading the trail (the investigation view): report generated, data exported
}


@dataclass(frozen=True)
class Actor:
    """Who did it, from where. ``type`` is the role or 'system'/'anonymous'/'gateway'."""

    id: UUID | None
    type: str
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

    @classmethod
    def system(cls, job: str | None = None) -> Actor:
        return cls(id=None, type="system", request_id=job)


def category_of(action: str) -> str:
    namespace = action.split(".", 1)[0]
    try:
        return CATEGORIES[namespace]
    except KeyError:
        raise ValueError(f"audit action {action!r}: unknown namespace {namespace!r}") from None


def record(
    cur: Cursor,
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: Any = None,
    *,
    before: Any = None,
    after: Any = None,
    metadata: dict[str, Any] | None = None,
    subjects: Iterable[UUID | str] | None = None,
) -> UUID:
    """Append one audit row in the current transaction and return its id.

    ``subjects``: the users whose event it is besides the actor (the activity feed finds
    it by them). Left out, a row about a user (resource_type 'user') has that user.
    """
    meta = dict(metadata or {})
    if subjects is None:
        subjects = [resource_id] if resource_type == "user" and _is_uuid(resource_id) else []
    subject_ids = sorted({str(UUID(str(s))) for s in subjects})
    if actor.request_id:
        meta.setdefault("request_id", actor.request_id)
    cur.execute(
        """
        INSERT INTO audit_log (category, action, actor_id, actor_type, actor_ip, user_agent,
                               resource_type, resource_id, payload_before, payload_after, metadata, subject_ids,
                               content_hash)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::uuid[], '')
        RETURNING id
        """,
        (
            category_of(action),
            action,
            actor.id,
            actor.type,
            actor.ip,
            actor.user_agent,
            resource_type,
            None if resource_id is None else str(resource_id),
            before,
            after,
            meta,
            subject_ids,
        ),
    )
    return cur.fetchone()["id"]


def _is_uuid(value: Any) -> bool:
    try:
        UUID(str(value))
    except ValueError:
        return False
    return value is not None
