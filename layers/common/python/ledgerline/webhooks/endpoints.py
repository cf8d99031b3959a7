"""Merchants' webhook endpoints: register (the secret shown once), list, delete, and the
delivery log. Only merchants have endpoints; another user's endpoint is a 404.

The signing secret is stored field-encrypted (``ledgerline.crypto``, bound to this row and
column) because the worker must sign with it: it is never logged, audited or listed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

from ledgerline import audit, crypto, errors, pagination
from ledgerline.audit import Actor
from ledgerline.config import settings
from ledgerline.db import Cursor
from ledgerline.webhooks import signing, targets
from ledgerline.webhooks.events import EVENT_TYPES
from ledgerline.webhooks.model import Attempt, Delivery, NewWebhookEndpoint, WebhookEndpoint

ROLES_ALLOWED = ("merchant",)
MAX_ENDPOINTS = 20
TABLE, SECRET_COLUMN = "webhook_endpoints", "secret_ciphertext"
CREATED, DELETED = "webhook_endpoint.created", "webhook_endpoint.deleted"

_COLUMNS = "id, url, events, created_at"


def _endpoint(row: dict[str, Any]) -> WebhookEndpoint:
    return WebhookEndpoint(id=row["id"], url=row["url"], events=tuple(row["events"]), created_at=row["created_at"])


def _merchant(principal: Any) -> None:
    if principal.role not in ROLES_ALLOWED:
        raise errors.Forbidden("webhook endpoints are for merchant accounts")


def _events(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise errors.ValidationFailed(
            f"events must be some of: {', '.join(EVENT_TYPES)}",
            errors=[errors.FieldError("events", f"unknown: {', '.join(unknown)}")],
        )
    return sorted(set(events))


def create(cur: Cursor, principal: Any, *, url: str, events: list[str], actor: Actor) -> NewWebhookEndpoint:
    """Register an endpoint of the caller (a merchant); its secret is in the answer only."""
    _merchant(principal)
    subscribed = _events(events)
    targets.check_for_registration(url, allow_private=settings().allow_private_webhook_targets)
    cur.execute(
        "SELECT count(*) AS n FROM webhook_endpoints WHERE owner_id = %s AND deleted_at IS NULL", (principal.id,)
    )
    if cur.fetchone()["n"] >= MAX_ENDPOINTS:
        raise errors.Conflict(f"at most {MAX_ENDPOINTS} webhook endpoints; delete one first")
    endpoint_id = uuid.uuid4()  # the ciphertext is bound to the row id, so it is chosen here
    secret = signing.new_secret()
    sealed = crypto.encrypt_field(secret, table=TABLE, column=SECRET_COLUMN, row_id=endpoint_id)
    cur.execute(
        f"""
        INSERT INTO webhook_endpoints (id, owner_id, url, events, secret_ciphertext)
        VALUES (%s, %s, %s, %s, %s) RETURNING {_COLUMNS}
        """,
        (endpoint_id, principal.id, url, subscribed, sealed),
    )
    created = _endpoint(cur.fetchone())
    audit.record(
        cur, actor, CREATED, "webhook_endpoint", endpoint_id, after={"url": url, "events": subscribed},
    )  # fmt: skip
    return NewWebhookEndpoint(**created.__dict__, secret=secret)


def list_endpoints(
    cur: Cursor, principal: Any, *, limit: int | None = None, cursor: str | None = None
) -> tuple[list[WebhookEndpoint], str | None]:
    """The caller's endpoints (deleted ones gone), newest first, a page at a time."""
    limit = pagination.check_limit(limit)
    after = pagination.decode(cursor)
    params: dict[str, Any] = {"owner": principal.id, "limit": limit + 1}
    where = "owner_id = %(owner)s AND deleted_at IS NULL"
    if after:
        where += " AND (created_at, id) < (%(t)s, %(id)s)"
        params.update(t=after[0], id=after[1])
    cur.execute(
        f"SELECT {_COLUMNS} FROM webhook_endpoints WHERE {where} ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
        params,
    )
    rows, next_cursor = pagination.page(cur.fetchall(), limit)
    return [_endpoint(r) for r in rows], next_cursor


def delete(cur: Cursor, principal: Any, endpoint_id: UUID, actor: Actor) -> None:
    """Delete one of the caller's endpoints: nothing more is delivered to it (pending
    deliveries are dropped by the worker). Deleting it again changes nothing."""
    cur.execute(
        "SELECT url, deleted_at FROM webhook_endpoints WHERE id = %s AND owner_id = %s FOR UPDATE",
        (endpoint_id, principal.id),
    )
    row = cur.fetchone()
    if row is None:
        raise errors.NotFound(f"webhook endpoint {endpoint_id} not found")
    if row["deleted_at"] is not None:
        return
    cur.execute("UPDATE webhook_endpoints SET deleted_at = now() WHERE id = %s", (endpoint_id,))
    audit.record(
        cur, actor, DELETED, "webhook_endpoint", endpoint_id, before={"url": row["url"]}, after={"deleted": True},
    )  # fmt: skip


def deliveries(
    cur: Cursor, principal: Any, endpoint_id: UUID, *, limit: int | None = None, cursor: str | None = None
) -> tuple[list[Delivery], str | None]:
    """The delivery log of one of the caller's endpoints (deleted ones too), newest first."""
    limit = pagination.check_limit(limit)
    after = pagination.decode(cursor)
    cur.execute("SELECT 1 FROM webhook_endpoints WHERE id = %s AND owner_id = %s", (endpoint_id, principal.id))
    if cur.fetchone() is None:
        raise errors.NotFound(f"webhook endpoint {endpoint_id} not found")
    params: dict[str, Any] = {"endpoint": endpoint_id, "limit": limit + 1}
    where = "d.endpoint_id = %(endpoint)s"
    if after:
        where += " AND (d.created_at, d.id) < (%(t)s, %(id)s)"
        params.update(t=after[0], id=after[1])
    cur.execute(
        f"""
        SELECT d.id, d.event_id, e.type AS event_type, d.status, d.created_at, d.updated_at,
               coalesce((SELECT jsonb_agg(jsonb_build_object(
                          'attempt', a.attempt, 'outcome', a.outcome, 'status_code', a.status_code,
                          'duration_ms', a.duration_ms, 'error', a.error, 'at', a.created_at) ORDER BY a.attempt)
                           FROM webhook_delivery_attempts a WHERE a.delivery_id = d.id), '[]') AS attempts
          FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
         WHERE {where}
         ORDER BY d.created_at DESC, d.id DESC
         LIMIT %(limit)s
        """,
        params,
    )
    rows, next_cursor = pagination.page(cur.fetchall(), limit)
    return [_delivery(r) for r in rows], next_cursor


def _delivery(row: dict[str, Any]) -> Delivery:
    attempts = tuple(
        Attempt(
            attempt=int(a["attempt"]),
            outcome=a["outcome"],
            status_code=None if a["status_code"] is None else int(a["status_code"]),
            duration_ms=int(a["duration_ms"]),
            error=a["error"],
            at=datetime.fromisoformat(a["at"]),
        )
        for a in row["attempts"]
    )
    return Delivery(
        id=row["id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        status=row["status"],
        attempts=attempts,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
