"""Bulk payouts: payroll-style, a merchant's wallet paid out to many of its payout
accounts at once (issue 19; docs/api.md "Bulk payouts").

    pending_approval ──approve (1 or 2 administrators)──► approved (every item's payout queued)
    (a total at or below the first limit is approved in the request itself)

``POST /v1/payouts/bulk`` runs ``bulk_payout_request`` in one ``money_call`` statement:
every item becomes a withdrawal (issue 14) to one of the caller's payout accounts, with
its own hold, all or nothing. From approval on, each item is the withdrawal machinery's:
its payout (``send_bulk``: the gateway's bulk transfer API where it has one), its
webhook and its settlement (``settle_payout``), so a failing item's hold is voided (its
money available again) while the others' are captured, paid.

Approval (ASVS 2.3.5): above ``bulk_payout_approval_limit`` (or with more items than
``bulk_payout_approval_items``) one administrator, above ``bulk_payout_two_person_limit``
two different ones; nobody approves their own
(``db/routines/bulk_payout_approve.sql``). The items are never decided one by one.

What the statement cannot do is prepared here: the second factor (above the withdrawal
step-up, as a single withdrawal of that total would need), the limits and the
cooling-off of the currency.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from ledgerline import errors
from ledgerline.audit import Actor
from ledgerline.ledger.schemas import AmountText, Currency

if TYPE_CHECKING:
    from ledgerline.caller import Principal
    from ledgerline.db import Cursor
    from ledgerline.gateways.base import Gateway

MAX_ITEMS = 1000
ROLES_ALLOWED = ("merchant",)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BulkPayoutItem(_Body):
    payout_account_id: UUID
    amount: AmountText
    narration: StrictStr | None = Field(default=None, min_length=1, max_length=100)


class CreateBulkPayout(_Body):
    account_id: UUID
    currency: Currency
    items: Annotated[list[BulkPayoutItem], Field(min_length=1, max_length=MAX_ITEMS)]
    otp: StrictStr | None = Field(
        default=None, max_length=20, description="A current TOTP code (or a recovery code): above the step-up amount"
    )


def _limit(limits: dict[str, Decimal], currency: str) -> str | None:
    value = limits.get(currency.upper(), limits.get("*"))
    return None if value is None else str(value)


def _total(body: CreateBulkPayout) -> Decimal | None:
    """The total as the statement will count it, for the step-up; None when an amount is
    not one the currency takes (the statement refuses it, stored and replayed)."""
    from ledgerline import money

    try:
        return sum((money.parse_amount(i.amount, body.currency) for i in body.items), Decimal(0))
    except errors.ValidationFailed:
        return None


def request_arguments(body: CreateBulkPayout, *, caller: Principal, key: UUID, actor: Actor) -> dict[str, Any]:
    """What ``bulk_payout_request`` receives. Merchants only (403 otherwise, nothing
    stored); above the withdrawal step-up the caller's second factor is spent first."""
    from ledgerline.config import settings
    from ledgerline.payments import payout_accounts, withdrawals

    if caller.role not in ROLES_ALLOWED:
        raise errors.Forbidden("bulk payouts are for merchant accounts")
    total = _total(body)
    threshold = withdrawals.step_up_threshold(body.currency)
    required = total is not None and threshold is not None and total > threshold
    # False for a key whose answer is stored: the statement replays it and runs nothing.
    passed = withdrawals.check_second_factor(caller, body.otp, key, actor) if required else False
    cfg = settings()
    return {
        "id": str(uuid.uuid4()),
        "account_id": str(body.account_id),
        "currency": body.currency,
        "items": [item.model_dump(mode="json", exclude_none=True) for item in body.items],
        "hold_expires_in_seconds": withdrawals.HOLD_SECONDS,
        "step_up": {"required": required, "passed": passed},
        "cooling_off": payout_accounts.cooling_off(body.currency),
        "approval": {
            "one": _limit(cfg.bulk_payout_approval_limit, body.currency),
            "two": _limit(cfg.bulk_payout_two_person_limit, body.currency),
            "items": cfg.bulk_payout_approval_items,
        },
    }


@dataclass(frozen=True)
class BulkPayout:
    id: UUID
    user_id: UUID
    body: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return self.body


def get_bulk_payout(cur: Cursor, bulk_id: str, *, viewer_id: UUID | None) -> BulkPayout:
    """A bulk payout of ``viewer_id`` (anyone's for None) with each item's status now;
    another's is not found."""
    from ledgerline.ids import object_id

    bid = object_id(bulk_id, "bulk payout")
    cur.execute(
        """
        SELECT b.id, b.user_id, bulk_payout_json(b) AS body FROM bulk_payouts b
         WHERE b.id = %s AND (%s::uuid IS NULL OR b.user_id = %s::uuid)
        """,
        (bid, viewer_id, viewer_id),
    )
    row = cur.fetchone()
    if row is None:
        raise errors.NotFound(f"bulk payout {bid} not found")
    return BulkPayout(row["id"], row["user_id"], dict(row["body"]))


# ------------------------------------------------------------------------------ payouts


def _approved_items(cur: Cursor, bulk_id: UUID) -> list[dict[str, Any]]:
    """The items approved and not yet sent to a gateway, in index order."""
    cur.execute(
        """
        SELECT * FROM withdrawals
         WHERE bulk_payout_id = %s AND status = 'approved' AND submitted_at IS NULL
         ORDER BY bulk_index
        """,
        (bulk_id,),
    )
    return [dict(r) for r in cur.fetchall()]


def send_bulk(bulk_id: UUID, *, gateway_of: Callable[[str], Gateway] | None = None) -> dict[str, int]:
    """Pay an approved bulk payout's items out (the gateway-payouts consumer): through each
    provider's bulk transfer API (Paystack, Flutterwave), one request per item where
    there is none (Stripe) or where the bulk request is refused. Each item is then its withdrawal's: submitted (its webhook
    settles it), or failed at once if the gateway refused (its money back to the wallet).
    ``GatewayUnavailable`` propagates: the message comes back, and only the items not
    recorded as sent yet are sent again (the references, each item's withdrawal id, make
    a resend harmless). Returns how many items ended how."""
    from ledgerline import money
    from ledgerline.db import transaction
    from ledgerline.gateways.base import GatewayRefused, PayoutItem
    from ledgerline.payments import withdrawals

    if gateway_of is None:
        from ledgerline.gateways import registry

        gateway_of = registry.gateway
    items = transaction(lambda cur: _approved_items(cur, bulk_id), read_only=True)
    outcomes: dict[str, int] = {}
    by_provider: dict[str, list[dict[str, Any]]] = {}
    for row in items:
        by_provider.setdefault(row["provider"], []).append(row)
    for provider, rows in by_provider.items():
        currency = rows[0]["currency"]
        exponent = Decimal(1).scaleb(-money.minor_units(currency))
        transfers = [
            PayoutItem(
                reference=str(row["id"]),
                amount=Decimal(row["amount"]).quantize(exponent),
                bank_code=row["bank_code"],
                account_number=withdrawals.destination_number(row),
                account_name=row["account_name"],
                narration=row.get("narration") or f"Withdrawal {row['id']}",
            )
            for row in rows
        ]
        try:
            payouts = gateway_of(provider).create_bulk_payout(
                currency=currency, items=transfers, title=f"Bulk payout {bulk_id}"
            )
        except GatewayRefused:
            # No bulk API, or the bulk refused (a duplicate reference after a lost answer,
            # a balance too low...): one request per item, each of which records a payout
            # the gateway has already and fails only what it refuses and does not have.
            ended = [withdrawals.send_payout(row["id"], gateway_of=gateway_of) for row in rows]
        else:
            ended = [
                withdrawals.record_payout(row["id"], provider, payout)
                for row, payout in zip(rows, payouts, strict=True)
            ]
        for outcome in ended:
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
