"""The gateway-webhooks consumer's work for one queued webhook.

In the issue's order: the signature was verified at the door (``ingress``); here the
event is deduplicated (provider, event id), the gateway is asked again for the payment
(the webhook only prompts the question), and ``payment_confirm`` credits the wallet in
one transaction with the payment's new status, its audit row, the event's dedupe row
and the user's notification. Anything that should be tried again later raises: a
gateway outage (``GatewayUnavailable``), a payment the gateway has not settled yet
(``NotSettledYet``), a message that cannot be read (it ends in the DLQ after the queue's
receives).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from ledgerline.db import transaction
from ledgerline.gateways.base import GatewayPayment, WebhookEvent
from ledgerline.jsonutil import loads
from ledgerline.payments import store
from ledgerline.payments.decide import Expected, decide


class UnreadableMessage(ValueError):
    """A message this consumer can never act on (it goes to the DLQ)."""


def process(body: str, *, message_id: str | None = None) -> str:
    """Act on one queued webhook; return the outcome (``payment_confirm``'s, or payout)."""
    provider, raw = _read(body)
    from ledgerline.gateways.registry import gateway  # deferred: loads the adapters

    adapter = gateway(provider)
    try:
        event = adapter.parse_webhook(raw)
    except ValueError as exc:
        raise UnreadableMessage(f"{provider} webhook cannot be read: {exc}") from None
    if event.kind == "payout":
        # Withdrawals settle their own payouts (ledgerline.payments.withdrawals).
        importlib.import_module("ledgerline.payments.withdrawals").settle_payout(event)
        return "payout"
    actor = _actor(event, message_id)
    facts = _event_json(event)

    def record(decision: str) -> str:
        confirmation = transaction(
            lambda cur: store.confirm(cur, provider=provider, event=facts, decision=decision, actor=actor)
        )
        return confirmation.outcome

    if event.kind != "payment":
        return record("ignored")
    seen, state = transaction(
        lambda cur: (
            store.event_seen(cur, provider, event.event_id),
            store.payment_state(cur, provider, event.reference),
        ),
        read_only=True,
    )
    if seen:
        return "duplicate_event"
    if state is None or state.status != "pending" or event.reference is None:
        # A payment unknown or no longer pending: the gateway is not asked; the event is
        # recorded once (and an unknown payment audited).
        return record("record")
    said = adapter.verify_payment(event.reference, state.provider_id)  # GatewayUnavailable: retried later
    decision = decide(Expected(state.amount, state.currency), event, said)  # NotSettledYet: retried later
    confirmation = transaction(
        lambda cur: store.confirm(
            cur,
            provider=provider,
            event=facts,
            decision=decision.outcome,
            actor=actor,
            gateway=_gateway_json(said),
            reason=decision.reason,
        )
    )
    return confirmation.outcome


def _read(body: str) -> tuple[str, bytes]:
    try:
        message = loads(body)
    except ValueError:
        raise UnreadableMessage("the message is not JSON") from None
    if not isinstance(message, Mapping) or not isinstance(message.get("provider"), str):
        raise UnreadableMessage("the message names no provider")
    raw = message.get("body")
    if not isinstance(raw, str) or not raw:
        raise UnreadableMessage("the message carries no webhook body")
    return message["provider"], raw.encode("utf-8")


def _actor(event: WebhookEvent, message_id: str | None) -> dict[str, Any]:
    """The gateway, as the audit trail names it."""
    return {
        "id": None,
        "type": "gateway",
        "metadata": {"provider": event.provider, "event_id": event.event_id, "message_id": message_id},
    }


def _event_json(event: WebhookEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "type": event.type,
        "reference": event.reference,
        "amount": None if event.amount is None else str(event.amount),
        "currency": event.currency.upper() if event.currency else None,
        "status": event.status,
    }


def _gateway_json(said: GatewayPayment) -> dict[str, Any]:
    return {
        "provider_id": said.provider_id,
        "amount": str(said.amount),
        "currency": said.currency.upper(),
        "status": str(said.status),
    }
