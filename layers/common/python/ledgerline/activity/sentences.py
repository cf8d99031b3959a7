"""The activity feed's sentences: one template per audit action, rendered from safe facts.

A feed item never shows a payload. An audit row may hold another user's data (a
transfer's row holds both wallets' balances), so the feed reads only ``Facts``: what the
viewer's own accounts gained or lost, an amount of the viewer's own payment, withdrawal
or hold, a reference of the viewer's own payment, the place of the viewer's own session,
a refusal's code. Each template turns those into a sentence; an action without one gets
the fallback (its words), never an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from ledgerline import money


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def __str__(self) -> str:
        places = money.CURRENCIES.get(self.currency, 2)
        return f"{self.currency} {abs(self.amount):,.{places}f}"


@dataclass(frozen=True)
class Facts:
    """What a sentence may say about one audit row, for the user reading it."""

    you: bool = False  # the reader did it
    credited: Money | None = None  # what the reader's own accounts gained in it
    debited: Money | None = None  # what they lost (as a positive amount)
    amount: Money | None = None  # the amount of the reader's payment, withdrawal or hold
    reference: str | None = None  # the reader's own payment's reference
    place: str | None = None  # "Lagos, NG": the reader's own session's place, if known
    reason: str | None = None  # a refusal's stable code


Template = Callable[[Facts], str]


def _ref(f: Facts) -> str:
    return f" (reference {f.reference})" if f.reference else ""


def _of(f: Facts) -> str:
    return f" of {f.amount}" if f.amount else ""


def _why(f: Facts) -> str:
    return f" ({f.reason.replace('_', ' ')})" if f.reason else ""


def _wallet_moves(f: Facts, what: str, yours: str) -> str:
    """A change to the reader's wallets; ``yours`` when the reader did it to someone else's."""
    if f.credited:
        return f"Wallet credited {f.credited} ({what})"
    if f.debited:
        return f"Wallet debited {f.debited} ({what})"
    return yours if f.you else what[:1].upper() + what[1:]


def _transfer(f: Facts) -> str:
    if f.credited and f.debited:
        return f"You moved {f.debited} between your wallets"
    if f.debited:
        return f"You sent {f.debited} to another wallet"
    if f.credited:
        return f"Wallet credited {f.credited} (transfer received)"
    return "A transfer was completed"


def _resolved(f: Facts) -> str:
    if f.credited:
        return f"Wallet credited {f.credited}{_ref(f)} after review"
    return "You settled a top-up under review" if f.you else "A top-up under review was settled" + _ref(f)


def _at(f: Facts) -> str:
    return f": {f.place}" if f.place else ""


def _login(f: Facts) -> str:
    return "You logged in" + (f" from {f.place}" if f.place else "")


def _by_you(yours: str, theirs: str) -> Template:
    return lambda f: yours if f.you else theirs


SENTENCES: dict[str, Template] = {
    # auth and access
    "auth.login_succeeded": _login,
    "auth.login_failed": lambda f: "A sign-in to your account failed" + _why(f),
    "auth.login_new_country": lambda f: "Sign-in from a country new to your account" + _at(f),
    "auth.login_code_sent": lambda f: "A sign-in code was e-mailed to you",
    "user.known_country_cleared": _by_you(
        "You cleared a country from a user's sign-in history", "A country was cleared from your sign-in history"
    ),
    "auth.account_locked": lambda f: "Sign-in was paused for a while after repeated failures",
    "auth.otp_failed": lambda f: "A two-factor code was refused",
    "auth.otp_setup_started": lambda f: "You started setting up two-factor authentication",
    "auth.otp_enabled": lambda f: "Two-factor authentication was turned on",
    "auth.recovery_code_used": lambda f: "A recovery code was used to sign in",
    "auth.logout": lambda f: "You logged out",
    "auth.session_revoked": lambda f: "A session was ended",
    "auth.sessions_revoked": lambda f: "Every session was ended",
    "auth.token_refreshed": lambda f: "Your session was renewed",
    "auth.refresh_token_reused": lambda f: "A sign-in token was used twice; its sessions were ended",
    "auth.session_idle_ended": lambda f: "A session was ended after a while unused; sign in again",
    "auth.rate_limited": lambda f: "Too many requests in a short time: some were refused",
    "auth.velocity_blocked": lambda f: "A payment was refused: too many in a short time",
    "auth.password_reset_requested": lambda f: "A password reset was requested",
    "auth.password_reset_sent": lambda f: "A password reset link was e-mailed to you",
    "auth.password_reset_skipped": lambda f: "A password reset link was not sent" + _why(f),
    "auth.password_reset_failed": lambda f: "A password reset attempt failed" + _why(f),
    "auth.password_reset_completed": lambda f: "Your password was changed",
    "auth.password_reset": lambda f: "Your password was reset",
    "auth.registration_address_taken": lambda f: "Someone tried to register with your e-mail address",
    "auth.email_verification_sent": lambda f: "A verification e-mail was sent to you",
    "auth.email_verification_skipped": lambda f: "A verification e-mail was not sent" + _why(f),
    "auth.email_verification_failed": lambda f: "An e-mail verification attempt failed" + _why(f),
    "user.email_verified": lambda f: "Your e-mail address was verified",
    "user.registered": lambda f: "You signed up",
    "user.created": _by_you("You created a user", "Your account was created"),
    "user.role_changed": _by_you("You changed a user's role", "Your role was changed"),
    "user.suspended": _by_you("You suspended a user", "Your account was suspended"),
    "user.reactivated": _by_you("You reactivated a user", "Your account was reactivated"),
    "user.password_rehashed": lambda f: "Your password's protection was upgraded",
    "api_key.created": lambda f: "You created an API key",
    "api_key.revoked": lambda f: "An API key was revoked",
    "webhook_endpoint.created": lambda f: "You added a webhook endpoint",
    "webhook_endpoint.deleted": lambda f: "A webhook endpoint was deleted",
    # financial
    "ledger.account.opened": lambda f: "A wallet was opened",
    "ledger.account.closed": lambda f: "A wallet was closed",
    "ledger.balance.queried": lambda f: "You checked a balance",
    "ledger.adjustment.posted": lambda f: _wallet_moves(f, "adjustment", "You posted an adjustment"),
    "ledger.adjustment.failed": lambda f: "An adjustment was refused" + _why(f),
    "ledger.transaction.reversed": lambda f: _wallet_moves(
        f, "a transaction was reversed", "You reversed a transaction"
    ),
    "ledger.transaction.reversal_failed": lambda f: "A reversal was refused" + _why(f),
    "transfer.completed": _transfer,
    "transfer.failed": lambda f: "Your transfer did not go through" + _why(f),
    "transfer.batch_completed": lambda f: "You sent a batch of transfers",
    "transfer.batch_failed": lambda f: "Your batch of transfers did not go through" + _why(f),
    "hold.created": lambda f: f"{f.amount} was put on hold" if f.amount else "An amount was put on hold",
    "hold.captured": lambda f: (
        f"Wallet debited {f.debited} (a hold was captured)" if f.debited else "A hold was captured"
    ),
    "hold.voided": lambda f: "A hold" + _of(f) + " was released",
    "hold.expired": lambda f: "A hold" + _of(f) + " expired and was released",
    "hold.failed": lambda f: "A hold was refused" + _why(f),
    "payment.initiated": lambda f: "You started a top-up" + _of(f) + _ref(f),
    "payment.initiation_failed": lambda f: "A top-up could not be started" + _why(f),
    "payment.succeeded": lambda f: (
        f"Wallet credited {f.credited}{_ref(f)}" if f.credited else "A top-up was credited" + _ref(f)
    ),
    "payment.failed": lambda f: "A top-up" + _of(f) + " failed" + _ref(f),
    "payment.flagged": lambda f: "A top-up" + _of(f) + " is being reviewed" + _ref(f),
    "payment.resolved": _resolved,
    "payment.resolution_failed": lambda f: "A top-up review was refused" + _why(f),
    "payment.webhook_unmatched": lambda f: "A payment notification matched no payment",
    "payment.webhook_signature_invalid": lambda f: "A payment notification with a bad signature was refused",
    "withdrawal.requested": lambda f: "You asked to withdraw" + (f" {f.amount}" if f.amount else ""),
    "withdrawal.request_failed": lambda f: "A withdrawal was refused" + _why(f),
    "withdrawal.approved": lambda f: (
        "You approved a withdrawal" if f.you else "Your withdrawal" + _of(f) + " was approved"
    ),
    "withdrawal.approval_failed": lambda f: "A withdrawal approval was refused" + _why(f),
    "withdrawal.rejected": lambda f: (
        "You rejected a withdrawal"
        if f.you
        else "Your withdrawal" + _of(f) + " was rejected; the money is back in your wallet"
    ),
    "withdrawal.rejection_failed": lambda f: "A withdrawal rejection was refused" + _why(f),
    "withdrawal.payout_submitted": lambda f: "Your withdrawal was sent to the bank",
    "withdrawal.paid": lambda f: "Your withdrawal" + _of(f) + " was paid out",
    "withdrawal.failed": lambda f: "Your withdrawal" + _of(f) + " failed; the money is back in your wallet",
    "payout_account.added": lambda f: "You added a payout account",
    "payout_account.removed": lambda f: "You removed a payout account",
    "bulk_payout.requested": lambda f: "You asked for a bulk payout",
    "bulk_payout.request_failed": lambda f: "A bulk payout was refused" + _why(f),
    "bulk_payout.approved": lambda f: "You approved a bulk payout" if f.you else "Your bulk payout was approved",
    "bulk_payout.approval_failed": lambda f: "A bulk payout approval was refused" + _why(f),
    "bulk_payout.rejected": lambda f: (
        "You rejected a bulk payout" if f.you else "Your bulk payout was rejected; the money is back in your wallet"
    ),
    "bulk_payout.rejection_failed": lambda f: "A bulk payout rejection was refused" + _why(f),
    "idempotency.replayed": lambda f: "A repeated request was answered with its first result",
    # administration
    "admin.account.frozen": _by_you("You froze a wallet", "Your wallet was frozen"),
    "admin.account.unfrozen": _by_you("You unfroze a wallet", "Your wallet was unfrozen"),
    "admin.ledger.checked": lambda f: "You ran the ledger check",
    "ledger.imbalance_detected": lambda f: "The ledger check found an imbalance",
    "reconciliation.run_requested": lambda f: "You asked for a reconciliation run",
    "reconciliation.discrepancies": lambda f: "A reconciliation run found discrepancies",
    "reconciliation.discrepancy_updated": lambda f: "You updated a reconciliation finding",
    "audit.report_generated": lambda f: "You read the audit trail",
    "keys.rotation_started": lambda f: "A key rotation started",
    "keys.rotated": lambda f: "A key was rotated",
    "config.fee_schedule.updated": lambda f: "You set a fee schedule",
    "config.fee_schedule.deleted": lambda f: "You removed a fee schedule",
    # dispute evidence (the other party reads what was added to their dispute)
    "dispute.evidence_submitted": _by_you("You added evidence to a dispute", "Evidence was added to your dispute"),
    "dispute.evidence_uploaded": _by_you(
        "Your document was received as evidence", "A document was received as evidence in your dispute"
    ),
    # escrow (both parties read each other's steps: the rows name them as subjects)
    "escrow.created": _by_you("You opened an escrow", "An escrow was opened with you"),
    "escrow.create_failed": lambda f: "An escrow could not be opened" + _why(f),
    "escrow.funded": _by_you("You paid into an escrow", "An escrow of yours was paid into"),
    "escrow.fund_failed": lambda f: "A payment into an escrow was refused" + _why(f),
    "escrow.released": _by_you("You released an escrow to its seller", "An escrow of yours was released to its seller"),
    "escrow.release_failed": lambda f: "An escrow release was refused" + _why(f),
    "escrow.refunded": _by_you("You refunded an escrow to its buyer", "An escrow of yours was refunded to its buyer"),
    "escrow.refund_failed": lambda f: "An escrow refund was refused" + _why(f),
    "dispute.raised": _by_you("You disputed an escrow", "An escrow of yours was disputed"),
    "dispute.raise_failed": lambda f: "A dispute was refused" + _why(f),
    "dispute.resolved": _by_you("You resolved a dispute", "A dispute of yours was resolved"),
    "dispute.resolve_failed": lambda f: "A dispute resolution was refused" + _why(f),
    # invoices (the buyer reads the seller's steps and the seller the buyer's payment)
    "invoice.created": _by_you("You sent an invoice", "You received an invoice"),
    "invoice.updated": _by_you("You changed an invoice", "An invoice to you was changed"),
    "invoice.deleted": _by_you("You withdrew an invoice", "An invoice to you was withdrawn"),
    "invoice.paid": _by_you("You paid an invoice", "An invoice of yours was paid into escrow"),
    "invoice.payment_failed": lambda f: "An invoice payment was refused" + _why(f),
    "invoice.overdue": lambda f: "An invoice is past its due date",
}


def fallback(action: str) -> str:
    """An action without a template (a newer writer, an old row): its own words."""
    words = action.replace("_", " ").split(".")
    return " ".join(words).capitalize()


def render(action: str, facts: Facts) -> str:
    template = SENTENCES.get(action)
    return template(facts) if template else fallback(action)
