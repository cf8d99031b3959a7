"""The ledger's values, and their JSON shapes in the API (docs/api.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from ledgerline.money import Money

SYSTEM_KINDS = ("external_funding", "fees_revenue", "payout_clearing", "adjustments")
# Accounts a user's transfer or capture may credit: other users' wallets.
USER_CREDITABLE_KINDS = ("user_wallet",)


def money_json(amount: Decimal, currency: str) -> dict[str, str]:
    return Money(amount, currency).to_json()


def as_datetime(value: Any) -> datetime:
    """A timestamp from the database, either native or rendered inside jsonb."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def as_uuid(value: Any) -> UUID | None:
    if value is None or isinstance(value, UUID):
        return value
    return UUID(str(value))


def as_decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(str(value))


@dataclass(frozen=True)
class Balance:
    posted: Decimal
    held: Decimal
    currency: str

    @property
    def available(self) -> Decimal:
        return self.posted - self.held

    def to_json(self) -> dict[str, Any]:
        return {
            "posted": money_json(self.posted, self.currency),
            "held": money_json(self.held, self.currency),
            "available": money_json(self.available, self.currency),
        }


@dataclass(frozen=True)
class Account:
    id: UUID
    owner_id: UUID | None
    kind: str
    currency: str
    name: str
    status: str
    may_go_negative: bool
    hot: bool
    created_at: datetime
    balance: Balance

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Account:
        return cls(
            id=row["id"],
            owner_id=row["owner_id"],
            kind=row["kind"],
            currency=row["currency"],
            name=row["name"],
            status=row["status"],
            may_go_negative=row["may_go_negative"],
            hot=row["hot"],
            created_at=row["created_at"],
            balance=Balance(row["posted"], row["held"], row["currency"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "currency": self.currency,
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "balance": self.balance.to_json(),
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Entry:
    id: UUID
    transaction_id: UUID
    account_id: UUID
    currency: str
    amount: Decimal  # signed: negative debits the account
    entry_type: str
    counterpart_id: UUID | None
    balance_after: Decimal | None
    created_at: datetime

    @classmethod
    def from_json(cls, transaction_id: UUID, data: dict[str, Any]) -> Entry:
        return cls(
            id=UUID(str(data["id"])),
            transaction_id=transaction_id,
            account_id=UUID(str(data["account_id"])),
            currency=data["currency"],
            amount=Decimal(str(data["amount"])),
            entry_type=data["entry_type"],
            counterpart_id=as_uuid(data.get("counterpart_id")),
            balance_after=as_decimal(data.get("balance_after")),
            created_at=as_datetime(data["created_at"]),
        )

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Entry:
        return cls(**{f: row[f] for f in cls.__dataclass_fields__})

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "transaction_id": self.transaction_id,
            "amount": money_json(self.amount, self.currency),
            "entry_type": self.entry_type,
            "balance_after": None if self.balance_after is None else money_json(self.balance_after, self.currency),
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Transaction:
    id: UUID
    kind: str
    status: str
    description: str | None
    reference: str | None
    reverses: UUID | None
    created_at: datetime
    entries: tuple[Entry, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    reversed_by: UUID | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Transaction:
        tid = UUID(str(data["id"]))
        return cls(
            id=tid,
            kind=data["kind"],
            status=data.get("status", "posted"),
            description=data.get("description"),
            reference=data.get("reference"),
            reverses=as_uuid(data.get("reverses")),
            created_at=as_datetime(data["created_at"]),
            entries=tuple(Entry.from_json(tid, e) for e in data.get("entries") or ()),
            metadata=data.get("metadata") or {},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "description": self.description,
            "reverses": self.reverses,
            "reversed_by": self.reversed_by,
            "entries": [
                {"account_id": e.account_id, **e.to_json()} for e in sorted(self.entries, key=lambda e: e.amount)
            ],
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Transfer:
    """A two-leg transaction of kind ``transfer``, as the API shows it."""

    id: UUID
    from_account_id: UUID
    to_account_id: UUID
    amount: Decimal
    currency: str
    description: str | None
    created_at: datetime
    reversed_by: UUID | None = None

    @classmethod
    def from_transaction(cls, t: Transaction) -> Transfer:
        debit = next(e for e in t.entries if e.amount < 0)
        credit = next(e for e in t.entries if e.amount > 0)
        return cls(
            id=t.id,
            from_account_id=debit.account_id,
            to_account_id=credit.account_id,
            amount=credit.amount,
            currency=credit.currency,
            description=t.description,
            created_at=t.created_at,
            reversed_by=t.reversed_by,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "from_account_id": self.from_account_id,
            "to_account_id": self.to_account_id,
            "amount": money_json(self.amount, self.currency),
            "status": "reversed" if self.reversed_by else "posted",
            "description": self.description,
            "reversed_by": self.reversed_by,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Hold:
    id: UUID
    account_id: UUID
    currency: str
    amount: Decimal
    status: str  # active | posted | voided | expired
    captured_amount: Decimal | None
    transaction_id: UUID | None
    expires_at: datetime | None  # None: pinned, it ends only when captured or voided (a withdrawal's)
    description: str | None
    created_at: datetime
    resolved_at: datetime | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Hold:
        return cls(
            id=UUID(str(data["id"])),
            account_id=UUID(str(data["account_id"])),
            currency=data["currency"],
            amount=Decimal(str(data["amount"])),
            status=data["status"],
            captured_amount=as_decimal(data.get("captured_amount")),
            transaction_id=as_uuid(data.get("transaction_id")),
            expires_at=None if data.get("expires_at") is None else as_datetime(data["expires_at"]),
            description=data.get("description"),
            created_at=as_datetime(data["created_at"]),
            resolved_at=None if data.get("resolved_at") is None else as_datetime(data["resolved_at"]),
        )

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Hold:
        return cls(**{f: row[f] for f in cls.__dataclass_fields__})

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account_id": self.account_id,
            "amount": money_json(self.amount, self.currency),
            "status": self.status,
            "captured_amount": None
            if self.captured_amount is None
            else money_json(self.captured_amount, self.currency),
            "transaction_id": self.transaction_id,
            "expires_at": self.expires_at,
            "description": self.description,
            "created_at": self.created_at,
        }
