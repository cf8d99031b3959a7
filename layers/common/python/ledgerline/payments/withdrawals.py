"""Withdrawals: money leaving a wallet for a bank account (issue 14; docs/api.md "Payments").

    requested ──approve──► approved ──payout──► paid | failed
        └──────reject─────► rejected

The three money routes run through ``api.money`` (one ``money_call`` statement each;
``db/routines/withdrawal_request.sql``, ``_approve.sql``, ``_reject.sql``). What the
statement cannot do is prepared here first, in Python:

* **the second factor** (step-up): above ``settings().withdrawal_step_up`` for the
  currency, the caller must have 2FA enrolled and send a current TOTP code (or an unused
  recovery code) as ``otp``; else 401 ``otp_required``, nothing stored. A code is spent
  when checked, in a transaction of its own, before the money statement (which is one
  statement and cannot also run Python's TOTP check). A retry with the same
  Idempotency-Key whose answer is stored skips the check: the statement only replays it.
  The statement refuses a withdrawal that needed the factor and did not pass it, so no
  path creates one unverified;
* **the destination**: the account number is encrypted (bound to the withdrawal's row,
  whose id is minted here), blind-indexed and masked before it is sent: its plaintext
  never reaches the database, a log, an audit row or a queue message.

After approval the ``gateway-payouts`` queue carries the withdrawal's id to
``send_payout`` (the worker), which decrypts the destination, asks the gateway to pay
(idempotent on the withdrawal's id as reference) and records the provider's payout id.
The money stays held on the wallet from the request until the payout answers: approval
pins the hold (it no longer expires). The payout's webhook reaches ``settle_payout``
(through the gateway-webhooks consumer): a success captures the hold to external_funding
(the money left the ledger) and marks the withdrawal paid; a failure voids the hold
(nothing was posted: the money is available again) and marks it failed. Settling is
idempotent and race-safe (``withdrawal_settle.sql``: a row lock, then the state).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator
from pydantic_core import PydanticCustomError

from ledgerline import errors, outbox
from ledgerline.audit import Actor
from ledgerline.ledger.holds import MAX_EXPIRY_SECONDS
from ledgerline.ledger.schemas import AmountText, Currency, Reason
from ledgerline.observability import logger

if TYPE_CHECKING:
    from ledgerline.caller import Principal
    from ledgerline.db import Cursor
    from ledgerline.gateways.base import Gateway, Payout, WebhookEvent

TABLE = "withdrawals"
CIPHERTEXT_COLUMN = "account_number_ciphertext"  # ledgerline.crypto.columns.ENCRYPTED_COLUMNS
# A request's hold lasts as long as a hold may (30 days): approval pins it; a withdrawal
# nobody decides on in that time expires with its hold (approval is then 409).
HOLD_SECONDS = MAX_EXPIRY_SECONDS
PROVIDERS = ("paystack", "stripe", "flutterwave")  # ledgerline.gateways.base.PROVIDERS


# ------------------------------------------------------------------------------ bodies


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Destination(_Body):
    bank_code: Annotated[StrictStr, Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9]+$")]
    account_number: Annotated[
        StrictStr, Field(min_length=6, max_length=34, pattern=r"^[A-Za-z0-9]+$", description="Digits (or an IBAN)")
    ]
    account_name: Annotated[StrictStr, Field(min_length=1, max_length=100)]


class CreateWithdrawal(_Body):
    account_id: UUID
    amount: AmountText
    currency: Currency
    # One of the two (issue 19): a bank account given here, or one of the caller's payout
    # accounts (whose gateway pays out: no provider then).
    destination: Destination | None = None
    payout_account_id: UUID | None = None
    otp: StrictStr | None = Field(
        default=None, max_length=20, description="A current TOTP code (or a recovery code): above the step-up amount"
    )
    provider: Literal["paystack", "stripe", "flutterwave"] | None = Field(
        default=None, description="The gateway that pays out; default: the deployment's"
    )

    @model_validator(mode="after")
    def _one_destination(self) -> CreateWithdrawal:
        if (self.destination is None) == (self.payout_account_id is None):
            raise PydanticCustomError("destination", "send either destination or payout_account_id (one of them)")
        if self.payout_account_id is not None and self.provider is not None:
            raise PydanticCustomError("provider", "a payout account is paid by the gateway it was added with")
        return self


class RejectWithdrawal(_Body):
    reason: Reason


# ------------------------------------------------------------------------------ requests


def step_up_threshold(currency: str) -> Decimal | None:
    """The amount above which a withdrawal in ``currency`` needs a second factor."""
    from ledgerline.config import settings

    limits = settings().withdrawal_step_up
    return limits.get(currency.upper(), limits.get("*"))


def needs_step_up(amount: str, currency: str) -> bool:
    """Whether this request needs the second factor. An amount the currency cannot take
    needs none here: the statement refuses it (a stored 422) whatever the factor."""
    from ledgerline import money

    threshold = step_up_threshold(currency)
    if threshold is None:
        return False
    try:
        return money.parse_amount(amount, currency) > threshold
    except errors.ValidationFailed:
        return False


def _answer_stored(cur: Cursor, scope: str, key: UUID) -> bool:
    cur.execute(
        """
        SELECT 1 FROM idempotency_keys
         WHERE scope = %s AND key = %s AND status_code IS NOT NULL AND expires_at > now()
        """,
        (scope, key),
    )
    return cur.fetchone() is not None


def check_second_factor(caller: Principal, otp: str | None, key: UUID, actor: Actor) -> bool:
    """Spend ``otp`` for ``caller`` (True), or find the request's answer already stored
    for ``key`` (False: the statement replays it and runs nothing); else raise 401
    ``otp_required`` saying what to send. A wrong code is audited (auth.otp_failed).

    This runs before the money statement admits the caller (rate limit included), so every
    code tried counts against the account's OTP limit here, as a login's does: a stolen
    token cannot guess its way past the step-up (429 once over it)."""
    from ledgerline import audit
    from ledgerline.auth import events, ratelimits
    from ledgerline.auth import otp as otps
    from ledgerline.db import transaction

    refusals: list[ratelimits.Refusal] = []

    def check(cur: Cursor) -> str:
        if _answer_stored(cur, str(caller.id), key):
            return "stored"
        if not otps.otp_enabled(cur, caller.id):
            return "not_enrolled"
        if not otp:
            return "missing"
        refusals[:] = ratelimits.hit(cur, ratelimits.account_check("otp", str(caller.id)))
        if refusals:
            return "limited"
        return "passed" if otps.check_code(cur, caller.id, otp, actor) else "wrong"

    outcome = transaction(check)
    if outcome == "stored":
        return False
    if outcome == "limited":
        raise ratelimits.refused(refusals)
    if outcome == "passed":
        return True
    if outcome == "wrong":
        transaction(
            lambda cur: audit.record(cur, actor, events.OTP_FAILED, "user", caller.id, metadata={"for": "withdrawal"})
        )
        raise errors.OtpRequired("the one-time password is not valid or was already used; send a current code")
    if outcome == "not_enrolled":
        raise errors.OtpRequired(
            "a withdrawal of this amount needs two-factor authentication: enrol with POST /v1/auth/otp/setup, "
            'then send a current code as "otp"'
        )
    raise errors.OtpRequired('a withdrawal of this amount needs a second factor: send a current code as "otp"')


def request_arguments(body: CreateWithdrawal, *, caller: Principal, key: UUID, actor: Actor) -> dict[str, Any]:
    """What ``withdrawal_request`` receives: the request with its destination sealed and
    the step-up's outcome. Never the plaintext account number, never the code."""
    from ledgerline import crypto
    from ledgerline.config import settings

    required = needs_step_up(body.amount, body.currency)
    passed = check_second_factor(caller, body.otp, key, actor) if required else False
    withdrawal_id = uuid.uuid4()
    common = {
        "id": str(withdrawal_id),
        "account_id": str(body.account_id),
        "amount": body.amount,
        "currency": body.currency,
        "hold_expires_in_seconds": HOLD_SECONDS,
        "step_up": {"required": required, "passed": passed},
    }
    if body.destination is None:  # to a payout account: its number stays sealed in its own row
        from ledgerline.payments import payout_accounts

        return {
            **common,
            "payout_account_id": str(body.payout_account_id),
            "cooling_off": payout_accounts.cooling_off(body.currency),
        }
    number = body.destination.account_number.upper()
    return {
        **common,
        "provider": body.provider or settings().payout_provider,
        "destination": {
            "bank_code": body.destination.bank_code,
            "account_name": body.destination.account_name.strip(),
            "account_number_ciphertext": crypto.encrypt_field(
                number, table=TABLE, column=CIPHERTEXT_COLUMN, row_id=withdrawal_id
            ).hex(),
            "account_number_blind_index": crypto.blind_index(number, kind="bank_account").hex(),
            "account_number_last4": str(crypto.mask(number)).removeprefix("****"),
        },
    }


# ------------------------------------------------------------------------------ reads


@dataclass(frozen=True)
class Withdrawal:
    """A withdrawal as the API shows it (``withdrawal_json``: the same shape the money
    routes answer with), with what the payout needs."""

    id: UUID
    user_id: UUID
    status: str
    body: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return self.body


def get_withdrawal(cur: Cursor, withdrawal_id: str, *, viewer_id: UUID | None) -> Withdrawal:
    """A withdrawal of ``viewer_id`` (anyone's for None); another's is not found."""
    from ledgerline.ids import object_id

    wid = object_id(withdrawal_id, "withdrawal")
    cur.execute(
        """
        SELECT w.id, w.user_id, w.status, withdrawal_json(w) AS body FROM withdrawals w
         WHERE w.id = %s AND (%s::uuid IS NULL OR w.user_id = %s::uuid)
        """,
        (wid, viewer_id, viewer_id),
    )
    row = cur.fetchone()
    if row is None:
        raise errors.NotFound(f"withdrawal {wid} not found")
    return Withdrawal(row["id"], row["user_id"], row["status"], dict(row["body"]))


# ------------------------------------------------------------------------------ payouts


def publish_payout(withdrawal_id: str) -> None:
    """Send an approved withdrawal's gateway-payouts message now, right after the approval's
    statement committed, instead of at the relay's next run (up to a minute). Best effort:
    what this does not send, the relay's sweep does (``ledgerline.outbox``)."""
    from ledgerline.config import settings
    from ledgerline.db import transaction

    cfg = settings()
    if cfg.local and not cfg.aws_endpoint_url:
        return  # a laptop without the AWS stand-in has no queue to send to: the sweep will

    def pending(cur: Cursor) -> list[int]:
        cur.execute(
            """
            SELECT id FROM outbox
             WHERE queue = 'gateway-payouts' AND relayed_at IS NULL AND payload->>'withdrawal_id' = %s
            """,
            (withdrawal_id,),
        )
        return [int(r["id"]) for r in cur.fetchall()]

    try:
        ids = transaction(pending, read_only=True)
        if ids:
            outbox.publish(ids)
    except Exception:
        logger.warning("payout message left to the outbox sweep", extra={"withdrawal_id": withdrawal_id})


PAYOUT_ACTOR = Actor.system("gateway-payouts")
Outcome = Literal["settled", "already", "not_approved", "not_found"]


def _settle(
    cur: Cursor, withdrawal_id: UUID, outcome: str, actor: dict[str, Any], *, reason: str | None, payout_id: str | None,
    source: str,
) -> dict[str, Any]:  # fmt: skip
    from ledgerline.ledger.sql import jsonb

    cur.execute(
        """
        SELECT withdrawal_settle(p_withdrawal => %s, p_outcome => %s, p_actor => %s, p_reason => %s,
                                 p_payout_id => %s, p_source => %s) AS result
        """,
        (withdrawal_id, outcome, jsonb(actor), reason, payout_id, source),
    )
    result = dict(cur.fetchone()["result"])
    outbox.publish_after_commit(cur, [int(i) for i in result.get("outbox_ids") or []])
    return result


def _system_actor(source: str, **metadata: Any) -> dict[str, Any]:
    return {"id": None, "type": "gateway" if source == "webhook" else "system", "metadata": metadata}


def _load(cur: Cursor, withdrawal_id: UUID) -> dict[str, Any] | None:
    cur.execute("SELECT * FROM withdrawals WHERE id = %s", (withdrawal_id,))
    row = cur.fetchone()
    return dict(row) if row is not None else None


def _submitted(cur: Cursor, withdrawal_id: UUID, payout_id: str) -> str:
    from ledgerline.ledger.sql import actor_json

    cur.execute(
        "SELECT withdrawal_submitted(p_withdrawal => %s, p_payout_id => %s, p_actor => %s) AS status",
        (withdrawal_id, payout_id, actor_json(PAYOUT_ACTOR)),
    )
    return str(cur.fetchone()["status"])


def send_payout(withdrawal_id: UUID, *, gateway_of: Callable[[str], Gateway] | None = None) -> str:
    """Pay an approved withdrawal out (the gateway-payouts consumer); return what became
    of it: "submitted" (the webhook will settle it), "paid", "failed", or the state it
    was already in. ``GatewayUnavailable`` propagates: the message stays for a retry.
    Safe to repeat: the gateway is idempotent on the reference (the withdrawal's id)."""
    from ledgerline import money
    from ledgerline.db import transaction
    from ledgerline.gateways.base import GatewayRefused

    if gateway_of is None:
        from ledgerline.gateways import registry

        gateway_of = registry.gateway
    row = transaction(lambda cur: _load(cur, withdrawal_id), read_only=True)
    if row is None:
        logger.warning("payout for an unknown withdrawal", extra={"withdrawal_id": str(withdrawal_id)})
        return "not_found"
    if row["status"] != "approved":
        return str(row["status"])  # settled already, or never approved: nothing to pay
    account_number = destination_number(row)
    amount = Decimal(row["amount"]).quantize(Decimal(1).scaleb(-money.minor_units(row["currency"])))
    gateway = gateway_of(row["provider"])
    try:
        payout = gateway.create_payout(
            reference=str(withdrawal_id),
            amount=amount,
            currency=row["currency"],
            bank_code=row["bank_code"],
            account_number=account_number,
            account_name=row["account_name"],
            narration=row.get("narration") or f"Withdrawal {withdrawal_id}",
        )
    except GatewayRefused as exc:
        # Sent before (a retry after an answer that was lost)? Then it is recorded, never
        # failed: failing it would give back money the gateway may be paying out.
        sent = _sent_before(gateway, withdrawal_id, row)
        if sent is not None:
            return record_payout(withdrawal_id, row["provider"], sent)
        if exc.code == "duplicate_reference":  # sent before, and not to be found: left for a human
            logger.error("payout refused as a duplicate and not found; left approved, its money held",
                         extra={"withdrawal_id": str(withdrawal_id), "provider": row["provider"]})  # fmt: skip
            return "approved"
        return refuse_payout(withdrawal_id, row["provider"], f"the gateway refused the payout: {exc}")
    return record_payout(withdrawal_id, row["provider"], payout)


def _sent_before(gateway: Gateway, withdrawal_id: UUID, row: dict[str, Any]) -> Payout | None:
    """The gateway's payout of this withdrawal, if it has one and can find it (by reference;
    by its id where the provider needs one and it was recorded); None otherwise."""
    from ledgerline.gateways.base import GatewayError

    try:
        return gateway.verify_payout(str(withdrawal_id), row["payout_id"])
    except GatewayError:
        return None


def destination_number(row: dict[str, Any]) -> str:
    """The plaintext account number an approved withdrawal is paid to (the payout worker's
    only): sealed in its own row, or once in its payout account's (issue 19)."""
    from ledgerline import crypto
    from ledgerline.db import transaction

    if row["payout_account_id"] is not None:
        from ledgerline.payments import payout_accounts

        return transaction(lambda cur: payout_accounts.account_number(cur, row["payout_account_id"]), read_only=True)
    return crypto.decrypt_field(bytes(row[CIPHERTEXT_COLUMN]), table=TABLE, column=CIPHERTEXT_COLUMN, row_id=row["id"])


def refuse_payout(withdrawal_id: UUID, provider: str, reason: str) -> str:
    """The gateway refused to pay: the withdrawal fails now (its money back to the wallet)."""
    from ledgerline.db import transaction

    actor = _system_actor("payout_worker", provider=provider)
    result = transaction(
        lambda cur: _settle(cur, withdrawal_id, "failed", actor, reason=reason, payout_id=None, source="payout_worker")
    )
    logger.warning("payout refused", extra={"withdrawal_id": str(withdrawal_id), "outcome": result["outcome"]})
    return str(result.get("status", result["outcome"]))


def record_payout(withdrawal_id: UUID, provider: str, payout: Payout) -> str:
    """What the gateway answered about an approved withdrawal's payout: submitted (its
    webhook settles it) or, if the answer is final already, settled now."""
    from ledgerline.db import transaction
    from ledgerline.gateways.base import PayoutStatus

    status = transaction(lambda cur: _submitted(cur, withdrawal_id, payout.provider_id))
    if status != "approved" or payout.status is PayoutStatus.PENDING:
        return "submitted" if status == "approved" else str(status)
    outcome = "succeeded" if payout.status is PayoutStatus.SUCCEEDED else "failed"
    actor = _system_actor("payout_worker", provider=provider)
    result = transaction(
        lambda cur: _settle(
            cur,
            withdrawal_id,
            outcome,
            actor,
            reason=payout.reason,
            payout_id=payout.provider_id,
            source="payout_worker",
        )
    )
    return str(result.get("status", result["outcome"]))


def check_unanswered(*, limit: int = 200, gateway_of: Callable[[str], Gateway] | None = None) -> dict[str, int]:
    """Ask the gateways about the payouts they accepted and have not answered for
    ``payout_status_after_minutes`` (the payouts-status schedule): a webhook may be lost,
    and until an answer the withdrawal's money stays held. A final answer settles it now,
    as its webhook would have (source "status_check"); one still pending after
    ``payout_overdue_hours`` is logged as an error for a human (the outcome is unknown, so
    the money stays held). A withdrawal approved that long ago and never recorded as
    accepted (its message lost, or dead-lettered) is sent again: the gateway is idempotent
    on the reference, so one it did accept is only recorded. A gateway that cannot be asked
    (down, or no lookup for this payout) is left for the next run. Returns how many ended how."""
    from ledgerline.config import settings
    from ledgerline.db import transaction
    from ledgerline.gateways.base import GatewayError, PayoutStatus

    if gateway_of is None:
        from ledgerline.gateways import registry

        gateway_of = registry.gateway
    cfg = settings()

    def unanswered(cur: Cursor) -> list[dict[str, Any]]:
        cur.execute(
            """
            SELECT id, provider, payout_id, submitted_at,
                   coalesce(submitted_at, decided_at) < now() - make_interval(hours => %(overdue)s) AS overdue
              FROM withdrawals
             WHERE status = 'approved' AND coalesce(submitted_at, decided_at) < now() - make_interval(mins => %(after)s)
             ORDER BY coalesce(submitted_at, decided_at) LIMIT %(limit)s
            """,
            {"after": cfg.payout_status_after_minutes, "overdue": cfg.payout_overdue_hours, "limit": limit},
        )
        return [dict(r) for r in cur.fetchall()]

    counts: dict[str, int] = {}
    for row in transaction(unanswered, read_only=True):
        where = {"withdrawal_id": str(row["id"]), "provider": row["provider"], "payout_id": row["payout_id"]}
        try:
            if row["submitted_at"] is None:
                send_payout(row["id"], gateway_of=gateway_of)
                counts["resent"] = counts.get("resent", 0) + 1
                continue
            payout = gateway_of(row["provider"]).verify_payout(str(row["id"]), row["payout_id"])
        except GatewayError as exc:  # down, or no way to look this payout up: the next run asks again
            logger.warning("payout status unknown", extra={**where, "error": str(exc)})
            ended = "unknown"
        else:
            if payout.status is PayoutStatus.PENDING:
                ended = "overdue" if row["overdue"] else "pending"
            else:
                ended = _settle_answered(row["id"], row["provider"], payout)
        if ended in ("overdue", "unknown") and row["overdue"]:
            logger.error("payout unanswered past its deadline; its money stays held", extra=where)
            counts["past_deadline"] = counts.get("past_deadline", 0) + 1
        counts[ended] = counts.get(ended, 0) + 1
    return counts


def _settle_answered(withdrawal_id: UUID, provider: str, payout: Payout) -> str:
    """Settle a withdrawal by the gateway's final answer to a status lookup."""
    from ledgerline.db import transaction
    from ledgerline.gateways.base import PayoutStatus

    outcome = "succeeded" if payout.status is PayoutStatus.SUCCEEDED else "failed"
    actor = _system_actor("status_check", provider=provider)
    result = transaction(
        lambda cur: _settle(
            cur, withdrawal_id, outcome, actor, reason=payout.reason, payout_id=payout.provider_id,
            source="status_check",
        )
    )  # fmt: skip
    return "settled" if result["outcome"] == "settled" else "already"


def settle_payout(event: WebhookEvent) -> None:
    """Settle the withdrawal a verified payout webhook is about (the gateway-webhooks
    consumer calls this). Idempotent and race-safe: the same event delivered five times
    at once settles once. A pending status, an event about no withdrawal of ours, or a
    success whose amount or currency is not the withdrawal's changes nothing (logged)."""
    from ledgerline.db import transaction
    from ledgerline.gateways.base import PayoutStatus

    where = {"provider": event.provider, "event_id": event.event_id, "reference": event.reference}
    if event.kind != "payout":
        return
    outcome = {PayoutStatus.SUCCEEDED.value: "succeeded", PayoutStatus.FAILED.value: "failed"}.get(event.status or "")
    if outcome is None:
        return  # still pending: the final event follows
    try:
        withdrawal_id = UUID(str(event.reference))
    except ValueError:
        logger.warning("payout event about no withdrawal of ours", extra=where)
        return
    actor = _system_actor("webhook", provider=event.provider, event_id=event.event_id)

    def settle(cur: Cursor) -> dict[str, Any]:
        cur.execute("SELECT amount, currency FROM withdrawals WHERE id = %s", (withdrawal_id,))
        row = cur.fetchone()
        if row is None:
            return {"outcome": "not_found"}
        if outcome == "succeeded" and (
            (event.currency is not None and event.currency.upper() != row["currency"])
            or (event.amount is not None and Decimal(event.amount) != Decimal(row["amount"]))
        ):
            return {"outcome": "mismatch"}
        reason = None if outcome == "succeeded" else _failure_reason(event)
        return _settle(cur, withdrawal_id, outcome, actor, reason=reason, payout_id=None, source="webhook")

    result = transaction(settle)
    if result["outcome"] in ("not_found", "mismatch", "not_approved"):
        logger.error("payout event not settled", extra={**where, "outcome": result["outcome"]})
    else:
        logger.info("payout event", extra={**where, "outcome": result["outcome"], "status": result.get("status")})


def _failure_reason(event: WebhookEvent) -> str:
    raw = event.raw if isinstance(event.raw, dict) else {}
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    for key in ("reason", "failure_reason", "complete_message", "failure_message"):
        value = data.get(key) if isinstance(data, dict) else None
        if isinstance(value, str) and value.strip():
            return value.strip()[:400]
    return f"the gateway reported the payout failed ({event.type})"
