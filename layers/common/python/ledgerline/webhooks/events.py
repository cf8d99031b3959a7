"""The events merchants may subscribe to, and the one way to emit one.

``emit`` runs in the caller's transaction: the event exists, and is delivered, exactly
when the change that caused it commits. From SQL (a money routine), call
``webhook_emit(p_owner => …, p_type => …, p_data => …)``: ``emit`` is that function
plus the publish right after commit. ``data`` carries what a merchant needs to act
(ids, amounts as strings, statuses), never a secret: it is stored and sent as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from ledgerline import outbox
from ledgerline.db import Cursor
from ledgerline.jsonutil import dumps

QUEUE = "merchant-webhooks"
MAX_DATA_BYTES = 64 * 1024

# Mirrors the table webhook_event_types (migration 0015); a test keeps the two equal.
EVENT_TYPES: dict[str, str] = {
    "payment.succeeded": "A top-up was paid and credited",
    "payment.failed": "A top-up failed at the gateway",
    "withdrawal.paid": "A withdrawal was paid out",
    "withdrawal.failed": "A withdrawal failed or was rejected; its hold was released",
    "transfer.received": "Money arrived in one of the merchant's wallets",
}


def emit(cur: Cursor, owner_id: UUID, type: str, data: Mapping[str, Any]) -> list[int]:
    """Record the event ``type`` of the merchant ``owner_id`` and queue one delivery per
    endpoint of theirs subscribed to it; return the outbox ids (none: nobody listens).
    They are published right after the caller's transaction commits (the relay's sweep
    sends them if that fails)."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {type!r}; known: {', '.join(EVENT_TYPES)}")
    text = dumps(dict(data))
    if len(text.encode()) > MAX_DATA_BYTES:
        raise ValueError(f"webhook event data is over {MAX_DATA_BYTES} bytes: send ids, not documents")
    cur.execute("SELECT webhook_emit(p_owner => %s, p_type => %s, p_data => %s::jsonb) AS ids", (owner_id, type, text))
    ids = [int(i) for i in cur.fetchone()["ids"]]
    outbox.publish_after_commit(cur, ids)
    return ids
