"""Payout accounts: the bank accounts a user pays out to (issue 19; docs/api.md
"Sessions, payout accounts, bulk"). The design's "payment method added / removed".

* **Added** only once the gateway's account-name enquiry resolved the number
  (Paystack ``GET /bank/resolve``, Flutterwave ``POST /v3/accounts/resolve``; Stripe has
  none: 422). The name stored is the bank's, never the client's. The enquiry runs before
  the transaction (no transaction waits on a gateway). The number is sealed bound to the
  new row (``encrypt_field``; the id is minted here for that), blind-indexed for the
  uniqueness of a live account per user, bank and number, and shown as ``****6789`` in
  every answer and audit row: its plaintext never reaches the database or a log.
* **Listed**: the caller's live ones, newest first. Another user's is a 404 everywhere.
* **Removed** softly (``removed_at``): withdrawals already made to it keep referring to it,
  and the payout worker still reads the number from it (``account_number``).
* **Cooling-off** (an account-takeover defence): an account added less than
  ``payout_account_cooling_hours`` ago cannot receive a withdrawal above
  ``payout_account_cooling_limit`` of its currency. ``cooling_off`` says what the money
  statement checks (``db/routines/payout_account_destination.sql``, in the same statement
  as the hold): 409 ``payout_account_cooling_off``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from ledgerline import audit, errors, pagination
from ledgerline.audit import Actor
from ledgerline.db import Cursor

TABLE = "payout_accounts"
CIPHERTEXT_COLUMN = "account_number_ciphertext"  # ledgerline.crypto.columns.ENCRYPTED_COLUMNS
BLIND_INDEX_KIND = "bank_account"  # the same kind as withdrawals' destinations: one lookup space
ADDED, REMOVED = "payout_account.added", "payout_account.removed"
MAX_LIVE = 20  # per user: a takeover cannot spray payout targets

_COLUMNS = "id, user_id, provider, bank_code, account_name, account_number_last4, created_at"


class AddPayoutAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bank_code: Annotated[StrictStr, Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9]+$")]
    account_number: Annotated[
        StrictStr, Field(min_length=6, max_length=34, pattern=r"^[A-Za-z0-9]+$", description="Digits (or an IBAN)")
    ]
    provider: Literal["paystack", "stripe", "flutterwave"] | None = Field(
        default=None, description="The gateway that resolves the name and pays out; default: the deployment's"
    )


@dataclass(frozen=True)
class PayoutAccount:
    id: UUID
    provider: str
    bank_code: str
    account_name: str
    last4: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "bank_code": self.bank_code,
            "account_number": f"****{self.last4}",
            "account_name": self.account_name,
            "provider": self.provider,
            "created_at": self.created_at,
        }


def _account(row: dict[str, Any]) -> PayoutAccount:
    return PayoutAccount(
        id=row["id"],
        provider=row["provider"],
        bank_code=row["bank_code"],
        account_name=row["account_name"],
        last4=row["account_number_last4"],
        created_at=row["created_at"],
    )


@dataclass(frozen=True)
class Resolved:
    """A number the gateway resolved: the bank's name for it."""

    provider: str
    bank_code: str
    account_number: str
    account_name: str


def resolve(body: AddPayoutAccount) -> Resolved:
    """Ask the gateway whose account this is. A number it cannot resolve (or a provider
    without an enquiry) is a 422 naming the field; a gateway that does not answer, 503."""
    from ledgerline.config import settings
    from ledgerline.gateways import registry
    from ledgerline.gateways.base import GatewayRefused, GatewayUnavailable
    from ledgerline.payments.checkout import GatewayDown

    provider = body.provider or settings().payout_provider
    number = body.account_number.upper()
    try:
        found = registry.gateway(provider).resolve_account(body.bank_code, number)
    except GatewayUnavailable:
        raise GatewayDown(
            f"{provider} did not answer the account-name enquiry; try again", headers={"Retry-After": "5"}
        ) from None
    except GatewayRefused as exc:
        if exc.code == "unsupported":
            raise errors.ValidationFailed(
                f"{provider} cannot resolve account names; add the account through another provider",
                errors=[errors.FieldError("provider", "offers no account-name enquiry")],
            ) from None
        raise errors.ValidationFailed(
            "the bank could not resolve this account number; check the number and the bank code",
            errors=[errors.FieldError("account_number", "not an account of this bank")],
        ) from None
    name = " ".join(found.account_name.split())[:100]
    if not name:
        raise errors.ValidationFailed(
            "the bank gave no name for this account number",
            errors=[errors.FieldError("account_number", "not an account of this bank")],
        )
    return Resolved(provider=provider, bank_code=body.bank_code, account_number=number, account_name=name)


def add(cur: Cursor, owner_id: UUID, resolved: Resolved, actor: Actor) -> PayoutAccount:
    """Store a resolved account of ``owner_id`` (one audit row). The same live bank and
    number again, even from two requests at once, is one row: the other gets 409."""
    from ledgerline import crypto

    cur.execute("SELECT count(*) AS n FROM payout_accounts WHERE user_id = %s AND removed_at IS NULL", (owner_id,))
    if cur.fetchone()["n"] >= MAX_LIVE:
        raise errors.Conflict(f"at most {MAX_LIVE} payout accounts; remove one first")
    account_id = uuid.uuid4()  # the ciphertext is bound to the row id, so it is chosen here
    number = resolved.account_number
    cur.execute(
        f"""
        INSERT INTO payout_accounts (id, user_id, provider, bank_code, account_name, account_number_ciphertext,
                                     account_number_blind_index, account_number_last4)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (user_id, account_number_blind_index, bank_code) WHERE removed_at IS NULL DO NOTHING
        RETURNING {_COLUMNS}
        """,
        (
            account_id,
            owner_id,
            resolved.provider,
            resolved.bank_code,
            resolved.account_name,
            crypto.encrypt_field(number, table=TABLE, column=CIPHERTEXT_COLUMN, row_id=account_id),
            crypto.blind_index(number, kind=BLIND_INDEX_KIND),
            str(crypto.mask(number)).removeprefix("****"),
        ),
    )
    row = cur.fetchone()
    if row is None:
        raise errors.Conflict("this bank account is already one of your payout accounts")
    added = _account(row)
    audit.record(cur, actor, ADDED, "payout_account", added.id, after=added.to_json(), subjects=[owner_id])
    return added


def list_accounts(
    cur: Cursor, owner_id: UUID, *, limit: int | None = None, cursor: str | None = None
) -> tuple[list[PayoutAccount], str | None]:
    """The owner's live payout accounts, newest first, a page at a time."""
    limit = pagination.check_limit(limit)
    after = pagination.decode(cursor)
    params: dict[str, Any] = {"owner": owner_id, "limit": limit + 1}
    where = "user_id = %(owner)s AND removed_at IS NULL"
    if after:
        where += " AND (created_at, id) < (%(t)s, %(id)s)"
        params.update(t=after[0], id=after[1])
    cur.execute(
        f"SELECT {_COLUMNS} FROM payout_accounts WHERE {where} ORDER BY created_at DESC, id DESC LIMIT %(limit)s",
        params,
    )
    rows, next_cursor = pagination.page(cur.fetchall(), limit)
    return [_account(r) for r in rows], next_cursor


def remove(cur: Cursor, owner_id: UUID, account_id: UUID, actor: Actor) -> None:
    """Remove one of the owner's payout accounts (softly; one audit row). Removing it
    again changes nothing; another user's is not found. A withdrawal to it racing this
    waits for it or is refused (payout_account_destination locks the row)."""
    cur.execute(
        f"SELECT {_COLUMNS}, removed_at FROM payout_accounts WHERE id = %s AND user_id = %s FOR UPDATE",
        (account_id, owner_id),
    )
    row = cur.fetchone()
    if row is None:
        raise errors.NotFound(f"payout account {account_id} not found")
    if row["removed_at"] is not None:
        return
    cur.execute("UPDATE payout_accounts SET removed_at = clock_timestamp() WHERE id = %s", (account_id,))
    audit.record(
        cur, actor, REMOVED, "payout_account", account_id, before=_account(row).to_json(), after={"removed": True},
        subjects=[owner_id],
    )  # fmt: skip


def cooling_off(currency: str) -> dict[str, Any]:
    """What the money statement checks for a withdrawal in ``currency`` to a payout
    account: ``{"hours", "limit"}`` (limit in major units as text, or None: no limit)."""
    from ledgerline.config import settings

    cfg = settings()
    limits = cfg.payout_account_cooling_limit
    limit = limits.get(currency.upper(), limits.get("*"))
    return {"hours": cfg.payout_account_cooling_hours, "limit": None if limit is None else str(limit)}


def account_number(cur: Cursor, account_id: UUID) -> str:
    """The plaintext number of a payout account (removed ones too), for the payout worker
    only: never logged, stored elsewhere or answered."""
    from ledgerline import crypto

    cur.execute(f"SELECT {CIPHERTEXT_COLUMN} FROM payout_accounts WHERE id = %s", (account_id,))
    row = cur.fetchone()
    if row is None:
        raise errors.NotFound(f"payout account {account_id} not found")
    return str(
        crypto.decrypt_field(bytes(row[CIPHERTEXT_COLUMN]), table=TABLE, column=CIPHERTEXT_COLUMN, row_id=account_id)
    )
