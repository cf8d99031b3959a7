"""Notifications: turn an outbox event into a message and hand it to a delivery provider.

Events arrive from the notifications queue (see ``ledgerline.outbox``) as JSON objects
with a ``type``; the recipient is the event's ``email`` or, given a ``user_id``, the
user's address. Providers are pluggable: in AWS, SES; on a laptop, a local mailbox file
(``<data_dir>/mailbox/notifications.jsonl``, one JSON object per delivered message) that
developers and tests read, e.g. to find a password-reset or e-mail verification token.

Delivery is at-least-once (the queue and the outbox both retry), so a recipient may get a
message twice; every delivery records the event's ``outbox_id`` so duplicates show.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ledgerline.db import Cursor
from ledgerline.jsonutil import dumps

MAILBOX_FILE = Path("mailbox") / "notifications.jsonl"


class NotificationError(ValueError):
    """An event that can never be delivered as it is (it ends in the DLQ for a human)."""


@dataclass(frozen=True)
class Notification:
    type: str
    channel: str
    to: str
    subject: str
    text: str
    user_id: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- rendering


def _password_reset(p: Mapping[str, Any]) -> tuple[str, str]:
    token = p.get("token")
    if not token:
        raise NotificationError("auth.password_reset event without a token")
    expires = p.get("expires_at") or "soon"
    return (
        "Reset your Ledgerline password",
        "Someone asked to reset the password of your Ledgerline account.\n\n"
        f"Your reset token:\n\n    {token}\n\n"
        f"Send it with your new password to POST /v1/auth/password-reset/confirm before {expires} (UTC).\n"
        "If you did not ask for this, ignore this message: your password stays as it is.\n",
    )


def _email_verification(p: Mapping[str, Any]) -> tuple[str, str]:
    token = p.get("token")
    if not token:
        raise NotificationError("auth.email_verification event without a token")
    expires = p.get("expires_at") or "tomorrow"
    return (
        "Confirm your e-mail address for Ledgerline",
        "Someone registered a Ledgerline account with this address.\n\n"
        f"Your verification token:\n\n    {token}\n\n"
        f"Send it to POST /v1/auth/verify-email before {expires} (UTC); then you can sign in.\n"
        "If you did not register, ignore this message: the account stays unusable.\n",
    )


def _registration_attempted(p: Mapping[str, Any]) -> tuple[str, str]:
    return (
        "Someone tried to register with your e-mail address",
        "Someone tried to register a new Ledgerline account with this address, which already has one.\n"
        "Nothing changed: your account, password and sessions are as they were.\n"
        "If it was you, sign in instead, or reset your password if you forgot it. "
        "If it was not, you need do nothing.\n",
    )


def _account_locked(p: Mapping[str, Any]) -> tuple[str, str]:
    text = p.get("message") or (
        "Sign-in to your account was locked after repeated failed attempts. "
        "If this was not you, reset your password; that also unlocks sign-in."
    )
    return "Sign-in to your Ledgerline account was locked", str(text) + "\n"


# Events whose message carries a secret, and the module that mints it (prepare_delivery):
# named here, imported on use, so a worker loads only what the event needs.
MINTED_BY = {
    "auth.password_reset": "ledgerline.auth.resets",
    "auth.email_verification": "ledgerline.auth.verification",  # verification.EVENTS
    "auth.registration_attempted": "ledgerline.auth.verification",
    "auth.login_code": "ledgerline.auth.new_country",  # new_country.EVENT
}


def prepare(payload: Any, *, run: Callable[[Callable[[Cursor], Any]], Any]) -> Any:
    """The event with the secret its message carries, minted now by this worker; None
    when there is nothing to send. Outbox rows and queue messages carry ids only (a
    secret there would be readable by the application role and kept), so an event that
    needs a secret gets it here, in a transaction (``run``) that stores only its digest."""
    module = MINTED_BY.get(str(payload.get("type"))) if isinstance(payload, Mapping) else None
    if module is None:
        return payload
    prepare_delivery = importlib.import_module(module).prepare_delivery
    return run(lambda cur: prepare_delivery(cur, payload))


TEMPLATES: dict[str, Callable[[Mapping[str, Any]], tuple[str, str]]] = {
    "auth.password_reset": _password_reset,
    "auth.account_locked": _account_locked,
    "auth.email_verification": _email_verification,
    "auth.registration_attempted": _registration_attempted,
}


def render(payload: Mapping[str, Any], *, email_of: Callable[[str], str | None]) -> Notification:
    """The message an event becomes. ``email_of(user_id)`` finds a recipient's address."""
    if not isinstance(payload, Mapping):
        raise NotificationError("a notification event is a JSON object")
    kind = payload.get("type")
    if not isinstance(kind, str) or not kind:
        raise NotificationError("a notification event needs a 'type'")
    channel = payload.get("channel") or "email"
    if channel != "email":
        raise NotificationError(f"channel {channel!r} is not supported; only 'email' is delivered")
    template = TEMPLATES.get(kind)
    if template is not None:
        subject, text = template(payload)
    elif payload.get("subject") and (payload.get("message") or payload.get("text")):
        subject, text = str(payload["subject"]), str(payload.get("message") or payload.get("text"))
    else:
        raise NotificationError(f"no template for {kind!r}, and the event has no subject and message of its own")
    user_id = str(payload["user_id"]) if payload.get("user_id") else None
    to = payload.get("email") or (email_of(user_id) if user_id else None)
    if not to:
        raise NotificationError(f"{kind} event has no recipient (no email, and no user with id {user_id})")
    return Notification(kind, channel, str(to), subject, text, user_id, dict(payload))


def email_of(cur: Cursor, user_id: str) -> str | None:
    cur.execute("SELECT email FROM users WHERE id::text = %s", (user_id,))
    row = cur.fetchone()
    return row["email"] if row else None


# ----------------------------------------------------------------------------- providers


class Provider(Protocol):
    name: str

    def deliver(self, notification: Notification, *, message_id: str, outbox_id: str | None) -> str:
        """Hand the message over; return the provider's id for it. Raise if not taken."""
        ...


class Mailbox:
    """The local stand-in for an e-mail provider: one JSON line per delivered message."""

    name = "mailbox"
    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path

    def deliver(self, notification: Notification, *, message_id: str, outbox_id: str | None) -> str:
        entry = {
            "id": str(uuid.uuid4()),
            "delivered_at": datetime.now(UTC),
            "message_id": message_id,
            "outbox_id": outbox_id,
            **asdict(notification),
        }
        line = dumps(entry) + "\n"
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # It holds reset tokens: readable by this user only.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with self._lock, os.fdopen(fd, "a", encoding="utf-8") as out:
            fcntl.flock(out, fcntl.LOCK_EX)  # other processes (a second dev stack, tests)
            try:
                out.write(line)
                out.flush()
            finally:
                fcntl.flock(out, fcntl.LOCK_UN)
        return entry["id"]

    def read(self) -> list[dict[str, Any]]:
        return read_mailbox(self.path)


class SesProvider:
    """E-mail through Amazon SES."""

    name = "ses"

    def deliver(self, notification: Notification, *, message_id: str, outbox_id: str | None) -> str:
        from ledgerline.aws import email

        return email.send_email(notification.to, notification.subject, notification.text)


def mailbox_path(data_dir: Path | None = None) -> Path:
    if data_dir is None:
        from ledgerline.config import settings

        data_dir = settings().data_dir
    return data_dir / MAILBOX_FILE


def read_mailbox(path: Path | None = None) -> list[dict[str, Any]]:
    """Every message the local mailbox holds, oldest first."""
    path = path or mailbox_path()
    with contextlib.suppress(FileNotFoundError), open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
    return []


def default_provider() -> Provider:
    """SES in AWS; the local mailbox on a laptop (and in tests)."""
    from ledgerline.config import settings

    if settings().local:
        return Mailbox(mailbox_path())
    return SesProvider()
