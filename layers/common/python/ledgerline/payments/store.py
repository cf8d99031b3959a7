"""The payments' SQL, in one place. Money and statuses change only inside the database
functions (``payment_open`` through ``money_op``, ``payment_confirm``); this module reads,
stores a checkout, and calls them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg2.extras import Json

from ledgerline import audit, errors, jsonutil, outbox
from ledgerline.audit import Actor
from ledgerline.auth import ratelimits
from ledgerline.config import Limit
from ledgerline.db import Cursor
from ledgerline.ids import object_id
from ledgerline.payments.model import Payment

# One audit row per IP and minute for refused webhook signatures: a flood from one
# address cannot fill the audit trail (counted in the rate-limit buckets).
SIGNATURE_AUDIT_LIMIT = Limit(1, 60)


def _json(value: Any) -> Json:
    return Json(value, dumps=jsonutil.dumps)


def get_payment(cur: Cursor, payment_id: UUID | str, *, viewer_id: UUID | None) -> Payment:
    """A payment; with ``viewer_id``, only if that user made it (else not found)."""
    pid = object_id(payment_id, "payment")
    cur.execute(
        "SELECT payment_json(p) AS j FROM payments p WHERE p.id = %s AND (%s::uuid IS NULL OR p.owner_id = %s::uuid)",
        (pid, viewer_id, viewer_id),
    )
    row = cur.fetchone()
    if row is None:
        raise errors.NotFound(f"payment {payment_id} not found")
    return Payment.from_json(row["j"])


@dataclass(frozen=True)
class CheckoutRequest:
    """What a gateway needs to open a payment's checkout."""

    payment_id: UUID
    reference: str
    provider: str
    amount: Decimal
    currency: str
    email: str
    status: str
    checkout: dict[str, Any] | None


def checkout_request(cur: Cursor, payment_id: UUID) -> CheckoutRequest:
    cur.execute(
        """
        SELECT p.id, p.reference, p.provider, p.amount, p.currency, p.status, p.checkout, u.email
          FROM payments p JOIN users u ON u.id = p.owner_id WHERE p.id = %s
        """,
        (payment_id,),
    )
    r = cur.fetchone()
    if r is None:
        raise errors.NotFound(f"payment {payment_id} not found")
    return CheckoutRequest(
        r["id"], r["reference"], r["provider"], r["amount"], r["currency"], r["email"], r["status"], r["checkout"]
    )


def save_checkout(cur: Cursor, payment_id: UUID, provider_id: str | None, checkout: dict[str, Any]) -> dict[str, Any]:
    """Keep the first checkout handed out for a payment; return the one kept (a second
    run racing the first gets the same one back)."""
    cur.execute(
        """
        UPDATE payments SET checkout = %s, provider_id = coalesce(provider_id, %s)
         WHERE id = %s AND checkout IS NULL
        RETURNING checkout
        """,
        (_json(checkout), provider_id, payment_id),
    )
    row = cur.fetchone()
    if row is not None:
        return dict(row["checkout"])
    cur.execute("SELECT checkout FROM payments WHERE id = %s", (payment_id,))
    return dict(cur.fetchone()["checkout"])


@dataclass(frozen=True)
class PaymentState:
    """A payment as the webhook consumer needs it before the gateway's re-query."""

    id: UUID
    amount: Decimal
    currency: str
    status: str
    provider_id: str | None


def event_seen(cur: Cursor, provider: str, event_id: str) -> bool:
    cur.execute("SELECT 1 FROM payment_webhook_events WHERE provider = %s AND event_id = %s", (provider, event_id))
    return cur.fetchone() is not None


def payment_state(cur: Cursor, provider: str, reference: str | None) -> PaymentState | None:
    if reference is None:
        return None
    cur.execute(
        "SELECT id, amount, currency, status, provider_id FROM payments WHERE provider = %s AND reference = %s",
        (provider, reference),
    )
    r = cur.fetchone()
    return None if r is None else PaymentState(r["id"], r["amount"], r["currency"], r["status"], r["provider_id"])


@dataclass(frozen=True)
class Confirmation:
    # credited | failed | flagged | duplicate_event | already_<status> | unknown_payment | ignored | recorded
    outcome: str
    payment: Payment | None


def confirm(
    cur: Cursor,
    *,
    provider: str,
    event: dict[str, Any],
    decision: str,
    actor: dict[str, Any],
    gateway: dict[str, Any] | None = None,
    reason: str | None = None,
) -> Confirmation:
    """``payment_confirm``: record the event once and apply the decision to a pending
    payment; the user's notification and the merchant's event are published right after
    the caller's transaction commits (the relay's sweep sends them if that fails)."""
    cur.execute(
        "SELECT payment_confirm(p_provider => %s, p_event => %s, p_decision => %s, p_actor => %s,"
        " p_gateway => %s, p_reason => %s) AS r",
        (provider, _json(event), decision, _json(actor), _json(gateway) if gateway else None, reason),
    )
    r = cur.fetchone()["r"]
    outbox.publish_after_commit(cur, [int(i) for i in r.get("outbox_ids") or []])
    return Confirmation(r["outcome"], Payment.from_json(r["payment"]) if r.get("payment") else None)


def record_invalid_signature(cur: Cursor, actor: Actor, provider: str, reason: str) -> bool:
    """Audit a webhook whose signature did not verify, at most once per IP and minute;
    return whether a row was written."""
    check = ratelimits.Check(f"webhook-signature:ip:{actor.ip or 'unknown'}", SIGNATURE_AUDIT_LIMIT, "webhook-audit")
    if ratelimits.hit(cur, [check]):
        return False
    audit.record(
        cur,
        actor,
        "payment.webhook_signature_invalid",
        "webhook",
        provider,
        metadata={"provider": provider, "reason": reason},
    )
    return True
