"""Fee schedules: what administrators configure (list, set, remove), audited.

A schedule says, for one currency and one transaction kind, the fee: ``percent``% of the
amount plus ``fixed``, bounded by ``minimum`` and ``maximum``. The fee itself is computed
by the database when it is charged (``fee_quote``, where its rounding rule is stated), never
here: this module only checks and stores schedules. Writes go through SECURITY DEFINER
routines (``fee_schedule_put``, ``fee_schedule_delete``: the application role only reads
``fee_schedules``), which write the audit row, with before and after, in the same
transaction as the change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ledgerline import errors, money
from ledgerline.audit import Actor
from ledgerline.db import Cursor
from ledgerline.ledger import sql

# The transaction kinds a fee is charged on (a schedule for any other would never apply).
TRANSACTION_KINDS = ("escrow_release",)

UPDATED = "config.fee_schedule.updated"
DELETED = "config.fee_schedule.deleted"

# 0 to 100, at most four decimals (the column is numeric(7,4)); no sign, exponent or spaces.
_PERCENT = re.compile(r"(0|[1-9][0-9]{0,2})(\.[0-9]{1,4})?")


class FeeScheduleBody(BaseModel):
    """PUT /v1/admin/fees. Amounts and percent are strings, parsed exactly (``check_schedule``)."""

    model_config = ConfigDict(extra="forbid")

    currency: str = Field(max_length=3)
    transaction_kind: str = Field(max_length=40)
    percent: str = Field(max_length=10)
    fixed: str = Field(max_length=40)
    minimum: str = Field(max_length=40)
    maximum: str | None = Field(default=None, max_length=40)


@dataclass(frozen=True)
class FeeScheduleInput:
    """A checked PUT body: exact Decimals in the currency's minor units."""

    currency: str
    transaction_kind: str
    percent: Decimal
    fixed: Decimal
    minimum: Decimal
    maximum: Decimal | None


def _invalid(field: str, message: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(f"{field}: {message}", errors=[errors.FieldError(field, message)])


def check_kind(value: str) -> str:
    if value not in TRANSACTION_KINDS:
        raise _invalid("transaction_kind", f"use one of {', '.join(TRANSACTION_KINDS)}")
    return value


def parse_percent(value: Any) -> Decimal:
    if not isinstance(value, str) or not _PERCENT.fullmatch(value):
        raise _invalid("percent", 'a decimal string from "0" to "100" with at most 4 decimals, e.g. "2.5"')
    percent = Decimal(value)
    if percent > 100:
        raise _invalid("percent", "at most 100")
    return percent


def check_schedule(
    *, currency: str, transaction_kind: str, percent: Any, fixed: Any, minimum: Any, maximum: Any = None
) -> FeeScheduleInput:
    """Every refusal is a 422 naming its field, before anything is written."""
    money.check_currency(currency)
    check_kind(transaction_kind)
    low = money.parse_amount(minimum, currency, "minimum", allow_zero=True)
    high = None if maximum is None else money.parse_amount(maximum, currency, "maximum", allow_zero=True)
    if high is not None and high < low:
        raise _invalid("maximum", "must not be less than minimum")
    return FeeScheduleInput(
        currency=currency,
        transaction_kind=transaction_kind,
        percent=parse_percent(percent),
        fixed=money.parse_amount(fixed, currency, "fixed", allow_zero=True),
        minimum=low,
        maximum=high,
    )


def list_schedules(cur: Cursor) -> list[dict[str, Any]]:
    cur.execute("SELECT fee_schedule_json(f) AS s FROM fee_schedules f ORDER BY f.currency, f.transaction_kind")
    return [row["s"] for row in cur.fetchall()]


def put_schedule(cur: Cursor, schedule: FeeScheduleInput, *, actor: Actor) -> dict[str, Any]:
    """Create or replace the schedule of its currency and kind; the answer is the stored one."""
    row = sql.call(
        cur,
        "SELECT fee_schedule_put(p_currency => %(currency)s, p_kind => %(kind)s, p_percent => %(percent)s,"
        " p_fixed => %(fixed)s, p_minimum => %(minimum)s, p_maximum => %(maximum)s,"
        " p_actor => %(actor)s, p_audit => %(audit)s) AS s",
        {
            "currency": schedule.currency,
            "kind": schedule.transaction_kind,
            "percent": schedule.percent,
            "fixed": schedule.fixed,
            "minimum": schedule.minimum,
            "maximum": schedule.maximum,
            "actor": sql.actor_json(actor),
            "audit": sql.jsonb(sql.audit_row(UPDATED)),
        },
    )
    result: dict[str, Any] = row["s"]
    return result


def delete_schedule(cur: Cursor, currency: str, transaction_kind: str, *, actor: Actor) -> dict[str, Any]:
    """Remove a schedule (that kind is then charged no fee in that currency). A currency or
    kind that names no schedule, known or not, is a 404."""
    row = sql.call(
        cur,
        "SELECT fee_schedule_delete(p_currency => %(currency)s, p_kind => %(kind)s,"
        " p_actor => %(actor)s, p_audit => %(audit)s) AS s",
        {
            "currency": currency,
            "kind": transaction_kind,
            "actor": sql.actor_json(actor),
            "audit": sql.jsonb(sql.audit_row(DELETED)),
        },
    )
    result: dict[str, Any] = row["s"]
    return result
