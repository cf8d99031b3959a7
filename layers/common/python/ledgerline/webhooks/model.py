"""What the webhook routes answer: frozen dataclasses whose ``to_json`` is the API's shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class WebhookEndpoint:
    """An endpoint as lists show it: never its secret."""

    id: UUID
    url: str
    events: tuple[str, ...]
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "events": list(self.events), "created_at": self.created_at}


@dataclass(frozen=True)
class NewWebhookEndpoint(WebhookEndpoint):
    """An endpoint just registered: the only time its signing secret is shown."""

    secret: str = field(repr=False, default="")

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "secret": self.secret}


@dataclass(frozen=True)
class Attempt:
    """One POST of a delivery: what the merchant's server answered, or why nothing did."""

    attempt: int
    outcome: str  # succeeded | failed | dead (the last failed attempt)
    status_code: int | None
    duration_ms: int
    error: str | None
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "outcome": self.outcome,
            "status_code": self.status_code,
            "duration_ms": self.duration_ms,
            "error": self.error,
            "at": self.at,
        }


@dataclass(frozen=True)
class Delivery:
    """One event for one endpoint, and its attempts so far (oldest first)."""

    id: UUID
    event_id: UUID
    event_type: str
    status: str  # pending | succeeded | dead
    attempts: tuple[Attempt, ...]
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "status": self.status,
            "attempts": [a.to_json() for a in self.attempts],
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
