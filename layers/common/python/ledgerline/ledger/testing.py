"""Helpers for tests and local tooling: users to own accounts, funded wallets.

Not used by any handler. Funding goes through the real adjustment path, so a funded
wallet is as good as one funded in production.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from uuid import UUID

from ledgerline.audit import Actor
from ledgerline.db import Cursor, transaction
from ledgerline.ledger.accounts import open_account
from ledgerline.ledger.corrections import adjust
from ledgerline.ledger.model import Account

TEST_ADMIN = Actor(id=None, type="system", request_id="tests")


def create_user(cur: Cursor, role: str = "user") -> UUID:
    email = f"ledger-{role}-{uuid.uuid4().hex[:12]}@example.test"
    cur.execute(
        "INSERT INTO users (email, full_name, role) VALUES (%s, %s, %s) RETURNING id", (email, f"Test {role}", role)
    )
    return cur.fetchone()["id"]


def user_actor(user_id: UUID, role: str = "user") -> Actor:
    return Actor(id=user_id, type=role, ip="127.0.0.1", user_agent="tests", request_id=f"req-{uuid.uuid4().hex[:8]}")


def new_wallet(currency: str = "NGN", funded: Decimal | str | int = 0, owner_id: UUID | None = None) -> Account:
    """A user (unless given) with one wallet, funded by an adjustment; committed."""

    def work(cur: Cursor) -> Account:
        owner = owner_id or create_user(cur)
        account = open_account(cur, owner_id=owner, currency=currency, actor=user_actor(owner))
        if Decimal(funded) > 0:
            adjust(
                cur,
                account_id=account.id,
                amount=Decimal(funded),
                currency=currency,
                direction="credit",
                reason="test funding",
                actor=TEST_ADMIN,
            )
        return account

    return transaction(work)
