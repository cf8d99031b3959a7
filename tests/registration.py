"""Registering through the API as a person does: POST /v1/auth/register (202), the
verification e-mail out of the local mailbox, POST /v1/auth/verify-email (204).

Two ways to the mail: in this process (``mailed``: publish what is pending and run the
notifications consumer now), or from a ``ledgerline dev up`` of a test's own, whose
workers deliver it to its data directory (``mailed_in``: wait for the line).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

VERIFY = "auth.email_verification"
TAKEN = "auth.registration_attempted"


def _mails(lines: list[dict[str, Any]], email: str, kind: str) -> list[dict[str, Any]]:
    return [m for m in lines if m.get("type") == kind and m.get("to") == email.lower()]


def mailed(email: str, kind: str = VERIFY) -> list[dict[str, Any]]:
    """The mails of ``kind`` to ``email`` in this process's mailbox, after delivering
    what the notifications queue holds now."""
    from ledgerline import notifications, outbox
    from ledgerline.local import workers

    outbox.relay(time_budget=10)  # anything not published at its commit
    workers.deliver_pending("notifications")
    return _mails(notifications.read_mailbox(), email, kind)


def mailed_in(data_dir: Path, email: str, kind: str = VERIFY, timeout: float = 60.0) -> list[dict[str, Any]]:
    """The mails of ``kind`` to ``email`` that a dev stack's workers delivered into its
    data directory, waiting up to ``timeout`` seconds for the first."""
    box = data_dir / "mailbox" / "notifications.jsonl"
    deadline = time.monotonic() + timeout
    while True:
        lines = [json.loads(line) for line in box.read_text().splitlines() if line.strip()] if box.exists() else []
        found = _mails(lines, email, kind)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def register_and_verify(post: Callable[..., Any], body: dict[str, Any], *, data_dir: Path | None = None) -> None:
    """Register ``body`` and verify its address; ``post(path, json=...)`` is the client's
    POST (a requests session's bound to the API's base URL, or the e2e Client's)."""
    registered = post("/v1/auth/register", json=body)
    assert registered.status_code == 202, registered.text
    assert registered.json() == {"status": "pending_verification"}
    mails = mailed(body["email"]) if data_dir is None else mailed_in(data_dir, body["email"])
    assert mails, f"no verification e-mail reached {body['email']}"
    verified = post("/v1/auth/verify-email", json={"token": mails[-1]["payload"]["token"]})
    assert verified.status_code == 204, verified.text


def poster(base_url: str, timeout: float = 30.0) -> Callable[..., Any]:
    """``post(path, json=...)`` against an API base URL, with requests."""
    import requests

    def post(path: str, **kw: Any) -> Any:
        return requests.post(f"{base_url}{path}", timeout=timeout, **kw)

    return post
