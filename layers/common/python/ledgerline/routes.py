"""The route table: the single source of truth for the HTTP API.

The local gateway, the OpenAPI document and the CDK API stack (one Lambda per route)
are all generated from ``ROUTES``. Adding a route means adding a row here and a handler
module exposing ``handler``; nothing else has to change.
"""

from __future__ import annotations

import re
from dataclasses import KW_ONLY, dataclass
from enum import StrEnum
from functools import cache


class Access(StrEnum):
    """Who may call a route. Everything but PUBLIC sits behind the authorizer."""

    PUBLIC = "public"
    USER = "user"  # any authenticated principal; object-level checks in the domain
    ADMIN = "admin"
    AUDITOR = "auditor"  # auditors and admins: read-only audit and reports


class RateLimit(StrEnum):
    """The limit of ``settings().rate_limits`` a route's requests count against."""

    LOGIN = "login"
    OTP = "otp"
    MONEY = "money"
    WEBHOOK = "webhook"  # per IP, generous: payment gateways call from a few addresses
    DEFAULT = "default"
    NONE = "none"  # never refused: health, the OpenAPI document, the JWKS


@dataclass(frozen=True)
class Route:
    """One route and everything the Endpoint enforces for it. Policy is these typed
    fields, read by the Endpoint; ``tags`` only group routes in the OpenAPI document."""

    method: str
    path: str  # API Gateway syntax: /v1/accounts/{id}
    handler: str  # dotted module path; the module exposes ``handler(event, context)``
    access: Access
    description: str
    _: KW_ONLY
    # Money-moving: Idempotency-Key required; the handler runs only through ``api.money``.
    money: bool = False
    limit: RateLimit = RateLimit.DEFAULT
    velocity: bool = False  # counts against the per-user velocity limit (money leaving a wallet)
    key_scope: str | None = None  # merchant API keys holding this scope may call it; None: no key
    during_enrolment: bool = False  # reachable by a login still enrolling its second factor
    # The largest request body this route takes, in bytes (the input gate's 413 above it);
    # None: the gate's default, 64 KB. API Gateway's HTTP API refuses more than 10 MB itself.
    max_body: int | None = None
    # A velocity route whose requests each move money for several items: the name of the
    # body's list whose length the velocity limit counts (None: each request counts one).
    velocity_items: str | None = None
    tags: tuple[str, ...] = ()
    # AWS permissions beyond the database, by name (see GRANTS); the CDK app turns them
    # into one least-privilege role per function.
    grants: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"{self.method} {self.path}"
        if self.money and self.limit is not RateLimit.MONEY:
            raise ValueError(f"{where}: a money route counts against the money limit (limit=RateLimit.MONEY)")
        if self.velocity and not self.money:
            raise ValueError(f"{where}: velocity counts money leaving a wallet; only money routes have it")
        if self.velocity_items is not None and not self.velocity:
            raise ValueError(f"{where}: velocity_items weighs the velocity count; the route needs velocity=True")
        if self.key_scope is not None and (self.access is not Access.USER or not _SCOPE.fullmatch(self.key_scope)):
            raise ValueError(f"{where}: key_scope is '<area>:read|write' on user routes only")
        if self.public and (self.during_enrolment or self.money):
            raise ValueError(f"{where}: a public route has no caller to enrol or to move money for")

    @property
    def name(self) -> str:
        """A stable identifier, usable as a CloudFormation logical id fragment."""
        return "".join(part.capitalize() for part in re.split(r"[._]", self.handler)[1:])

    @property
    def lambda_handler(self) -> str:
        return f"{self.handler}.handler"

    @property
    def public(self) -> bool:
        return self.access is Access.PUBLIC


_SCOPE = re.compile(r"[a-z][a-z-]*:(read|write)")
# 1,000 transfers: ~130 KB as usually sent, ~650 KB with every description at its 500 characters.
BATCH_MAX_BODY = 1024 * 1024


# The vocabulary of ``grants``. Every function may reach the database through RDS Proxy
# with the application role; anything else must be named here.
GRANTS = {
    "kms:jwt-sign": "sign access tokens with the JWT KMS key",
    "kms:jwt-verify": "read the JWT KMS keys' public halves (JWKS, verification)",
    "kms:field": "generate/decrypt field-encryption data keys",
    "kms:audit-checkpoint": "sign/verify audit chain checkpoints",
    "s3:audit-write": "put objects into the audit bucket",
    "s3:audit-read": "read objects from the audit bucket",
    "s3:evidence-write": "presign uploads (PutObject) into the dispute evidence bucket",
    "s3:evidence-read": "read (and presign downloads of) object versions in the dispute evidence bucket",
    "secret:gateways": "read payment gateway secrets",
    "secret:blind-index": "read the blind-index HMAC key",
    "sqs:notifications": "send to the notifications queue",
    "sqs:gateway-webhooks": "send to the gateway webhooks queue",
    "sqs:merchant-webhooks": "send to the merchant webhooks queue",
    "sqs:gateway-payouts": "send to the gateway payouts queue",
    "ses:send": "send e-mail through SES (LEDGERLINE_EMAIL_FROM)",
}

P, U, A, AU = Access.PUBLIC, Access.USER, Access.ADMIN, Access.AUDITOR
LOGIN, OTP, MONEY, NONE = RateLimit.LOGIN, RateLimit.OTP, RateLimit.MONEY, RateLimit.NONE

ROUTES: tuple[Route, ...] = (
    # system
    Route("GET", "/v1/health", "functions.system.health", P, "Liveness and schema version", limit=NONE, tags=("system",)),
    Route("GET", "/v1/openapi.json", "functions.system.openapi", P, "This API's OpenAPI 3 document", limit=NONE,
          tags=("system",)),
    # identity
    Route("POST", "/v1/auth/register", "functions.auth.register", P, "Sign up (role user)", tags=("auth",),
          grants=("kms:field", "secret:blind-index", "sqs:notifications")),
    Route("POST", "/v1/auth/verify-email", "functions.auth.verify_email", P,
          "Verify the e-mail address with the token a registration mailed", tags=("auth",)),
    Route("POST", "/v1/auth/login", "functions.auth.login", P, "Log in: password (+ TOTP) to tokens", limit=LOGIN,
          tags=("auth",), grants=("kms:jwt-sign", "kms:field", "sqs:notifications")),
    Route("POST", "/v1/auth/refresh", "functions.auth.refresh", P, "Rotate a refresh token", tags=("auth",),
          grants=("kms:jwt-sign", "secret:blind-index")),  # the server key successors are derived with
    Route("POST", "/v1/auth/logout", "functions.auth.logout", U, "Revoke this token and its session",
          during_enrolment=True, tags=("auth",)),
    Route("POST", "/v1/auth/otp/setup", "functions.auth.otp_setup", U, "Start TOTP enrolment", limit=OTP,
          during_enrolment=True, tags=("auth",), grants=("kms:field",)),
    Route("POST", "/v1/auth/otp/verify", "functions.auth.otp_verify", U, "Confirm TOTP enrolment", limit=OTP,
          during_enrolment=True, tags=("auth",), grants=("kms:field",)),
    Route("POST", "/v1/auth/password-reset/request", "functions.auth.password_reset_request", P,
          "Mail a password reset link", tags=("auth",), grants=("sqs:notifications",)),
    Route("POST", "/v1/auth/password-reset/confirm", "functions.auth.password_reset_confirm", P,
          "Set a new password with a reset token", tags=("auth",)),
    Route("GET", "/v1/me", "functions.auth.me", U, "The caller's profile", during_enrolment=True, tags=("me",)),
    Route("GET", "/v1/me/sessions", "functions.auth.me_sessions", U, "The caller's open sessions", tags=("me",)),
    Route("DELETE", "/v1/me/sessions/{id}", "functions.auth.me_session_revoke", U, "End one session", tags=("me",)),
    Route("POST", "/v1/me/sessions/revoke-all", "functions.auth.me_sessions_revoke_all", U, "End every session",
          tags=("me",)),
    Route("GET", "/v1/admin/users", "functions.auth.admin_users_list", A, "List users", tags=("admin",)),
    Route("PATCH", "/v1/admin/users/{id}", "functions.auth.admin_users_update", A, "Change a user's role or status",
          tags=("admin",)),
    Route("GET", "/v1/admin/users/{id}/countries", "functions.auth.admin_user_countries_list", A,
          "A user's known login countries (a login from another needs a second factor)", tags=("admin",)),
    Route("DELETE", "/v1/admin/users/{id}/countries/{country}", "functions.auth.admin_user_countries_clear", A,
          "Forget one of a user's known login countries (audited)", tags=("admin",)),
    Route("POST", "/v1/api-keys", "functions.auth.api_keys_create", U, "Create an API key (merchants)",
          tags=("api-keys",)),
    Route("GET", "/v1/api-keys", "functions.auth.api_keys_list", U, "List the caller's API keys", tags=("api-keys",)),
    Route("DELETE", "/v1/api-keys/{id}", "functions.auth.api_keys_revoke", U, "Revoke an API key", tags=("api-keys",)),
    Route("GET", "/.well-known/jwks.json", "functions.auth.jwks", P, "Public keys of access tokens (JWKS)", limit=NONE,
          tags=("jwks",), grants=("kms:jwt-verify",)),
    Route("GET", "/.well-known/openid-configuration", "functions.auth.openid_configuration", P,
          "Issuer metadata for token verifiers", limit=NONE, tags=("jwks",)),
    # ledger
    Route("POST", "/v1/accounts", "functions.ledger.accounts_create", U, "Open a wallet", key_scope="accounts:write",
          tags=("accounts",)),
    Route("GET", "/v1/accounts", "functions.ledger.accounts_list", U, "The caller's accounts",
          key_scope="accounts:read", tags=("accounts",)),
    Route("GET", "/v1/accounts/{id}", "functions.ledger.accounts_get", U, "One account and its balance",
          key_scope="accounts:read", tags=("accounts",)),
    Route("GET", "/v1/accounts/{id}/entries", "functions.ledger.accounts_entries", U,
          "An account's entries, newest first", key_scope="accounts:read", tags=("accounts",)),
    Route("GET", "/v1/accounts/{id}/balance", "functions.ledger.accounts_balance", U,
          "Posted balance now or at a past instant", key_scope="accounts:read", tags=("accounts",)),
    Route("POST", "/v1/transfers", "functions.ledger.transfers_create", U, "Move money to another wallet", money=True,
          limit=MONEY, velocity=True, key_scope="transfers:write", tags=("transfers",)),
    # batch transfers (issue 19): up to 1,000 items (~130 KB), so a body limit of its own; velocity counts items
    Route("POST", "/v1/transfers/batch", "functions.ledger.transfers_batch", U,
          "Up to 1,000 transfers at once: all or nothing (atomic) or each its own result (independent)",
          money=True, limit=MONEY, velocity=True, key_scope="transfers:write", tags=("transfers",),
          max_body=BATCH_MAX_BODY, velocity_items="transfers"),
    Route("GET", "/v1/transfers/{id}", "functions.ledger.transfers_get", U, "One transfer",
          key_scope="transfers:read", tags=("transfers",)),
    Route("POST", "/v1/holds", "functions.ledger.holds_create", U, "Place a hold", money=True, limit=MONEY,
          key_scope="holds:write", tags=("holds",)),
    Route("POST", "/v1/holds/{id}/capture", "functions.ledger.holds_capture", U, "Capture all or part of a hold",
          money=True, limit=MONEY, velocity=True, key_scope="holds:write", tags=("holds",)),
    Route("POST", "/v1/holds/{id}/void", "functions.ledger.holds_void", U, "Release a hold", money=True, limit=MONEY,
          key_scope="holds:write", tags=("holds",)),
    Route("POST", "/v1/admin/adjustments", "functions.ledger.admin_adjustments_create", A,
          "Manual movement against the adjustments account", money=True, limit=MONEY, tags=("admin", "ledger")),
    Route("POST", "/v1/admin/transactions/{id}/reverse", "functions.ledger.admin_transactions_reverse", A,
          "Reverse a transaction (once)", money=True, limit=MONEY, tags=("admin", "ledger")),
    Route("GET", "/v1/admin/ledger/check", "functions.ledger.admin_ledger_check", A, "Re-check every ledger invariant",
          tags=("admin", "ledger")),
    Route("POST", "/v1/admin/accounts/{id}/freeze", "functions.ledger.admin_accounts_freeze", A, "Freeze an account",
          tags=("admin", "ledger")),
    Route("POST", "/v1/admin/accounts/{id}/unfreeze", "functions.ledger.admin_accounts_unfreeze", A,
          "Unfreeze an account", tags=("admin", "ledger")),
    # payments
    Route("POST", "/v1/topups", "functions.payments.topups_create", U, "Top up a wallet through a payment gateway",
          money=True, limit=MONEY, tags=("payments",), grants=("secret:gateways",)),
    Route("GET", "/v1/payments/{id}", "functions.payments.payments_get", U, "One payment, with its checkout",
          tags=("payments",)),
    Route("POST", "/v1/webhooks/{provider}", "functions.webhooks.ingress", P, "A payment gateway's signed webhook",
          limit=RateLimit.WEBHOOK, tags=("webhooks",), grants=("secret:gateways", "sqs:gateway-webhooks")),
    Route("POST", "/v1/admin/payments/{id}/resolve", "functions.payments.admin_payments_resolve", A,
          "Credit or fail a flagged payment", money=True, limit=MONEY, tags=("admin", "payments"),
          grants=("sqs:notifications", "sqs:merchant-webhooks")),
    # withdrawals (issue 14): a request holds the amount; an admin's approval pins the hold and
    # queues the payout (gateway-payouts); the payout's webhook captures or voids the hold
    Route("POST", "/v1/withdrawals", "functions.payments.withdrawals_create", U,
          "Withdraw to a bank account (held until an administrator decides)", money=True, limit=MONEY,
          velocity=True, tags=("withdrawals",), grants=("kms:field", "secret:blind-index")),
    Route("GET", "/v1/withdrawals/{id}", "functions.payments.withdrawals_get", U, "One withdrawal (the caller's)",
          tags=("withdrawals",)),
    # payout accounts (issue 19): resolved by the gateway's account-name enquiry, sealed, masked
    Route("POST", "/v1/payout-accounts", "functions.payments.payout_accounts_create", U,
          "Add a bank account to pay out to (its name resolved by the gateway)", tags=("payout-accounts",),
          grants=("kms:field", "secret:blind-index", "secret:gateways")),
    Route("GET", "/v1/payout-accounts", "functions.payments.payout_accounts_list", U,
          "The caller's payout accounts (numbers masked)", tags=("payout-accounts",)),
    Route("DELETE", "/v1/payout-accounts/{id}", "functions.payments.payout_accounts_delete", U,
          "Remove a payout account", tags=("payout-accounts",)),
    # bulk payouts (issue 19): each item a withdrawal with its hold; administrators approve
    # above a total (two of them above the two-person limit); velocity counts items
    Route("POST", "/v1/payouts/bulk", "functions.payments.payouts_bulk_create", U,
          "Pay a merchant's wallet out to many of its payout accounts (up to 1,000 items)", money=True,
          limit=MONEY, velocity=True, tags=("payouts",), max_body=BATCH_MAX_BODY, velocity_items="items",
          grants=("kms:field", "sqs:gateway-payouts")),
    Route("GET", "/v1/payouts/bulk/{id}", "functions.payments.payouts_bulk_get", U,
          "One bulk payout and each item's status", tags=("payouts",)),
    Route("POST", "/v1/admin/payouts/bulk/{id}/approve", "functions.payments.payouts_bulk_approve", A,
          "Approve a bulk payout (never one's own; two administrators above the two-person limit)",
          money=True, limit=MONEY, tags=("admin", "payouts"), grants=("sqs:gateway-payouts",)),
    Route("POST", "/v1/admin/payouts/bulk/{id}/reject", "functions.payments.payouts_bulk_reject", A,
          "Reject a bulk payout waiting for approval: every item's hold is released", money=True, limit=MONEY,
          tags=("admin", "payouts"), grants=("sqs:notifications",)),
    Route("POST", "/v1/admin/withdrawals/{id}/approve", "functions.payments.admin_withdrawals_approve", A,
          "Approve a withdrawal: its money stays held until the payout answers, which is queued", money=True,
          limit=MONEY, tags=("admin", "withdrawals"), grants=("sqs:gateway-payouts",)),
    Route("POST", "/v1/admin/withdrawals/{id}/reject", "functions.payments.admin_withdrawals_reject", A,
          "Reject a withdrawal: its hold is released", money=True, limit=MONEY, tags=("admin", "withdrawals"),
          grants=("sqs:notifications",)),
    # merchant webhooks (issue 14): endpoints receive signed events (ledgerline/webhooks)
    Route("POST", "/v1/webhook-endpoints", "functions.webhooks.endpoints_create", U,
          "Register a webhook endpoint (merchants; the signing secret is shown once)", key_scope="webhooks:write",
          tags=("webhooks",), grants=("kms:field",)),
    Route("GET", "/v1/webhook-endpoints", "functions.webhooks.endpoints_list", U, "The caller's webhook endpoints",
          key_scope="webhooks:read", tags=("webhooks",)),
    Route("DELETE", "/v1/webhook-endpoints/{id}", "functions.webhooks.endpoints_delete", U,
          "Delete a webhook endpoint (nothing more is delivered to it)", key_scope="webhooks:write",
          tags=("webhooks",)),
    Route("GET", "/v1/webhook-endpoints/{id}/deliveries", "functions.webhooks.endpoints_deliveries", U,
          "An endpoint's deliveries and their attempts, newest first", key_scope="webhooks:read",
          tags=("webhooks",)),
    # invoices (issue 17): a seller bills a buyer; paying moves the buyer's money into an escrow of its own
    Route("POST", "/v1/invoices", "functions.invoices.invoices_create", U, "Bill a buyer (the caller is the seller)",
          key_scope="invoices:write", tags=("invoices",)),
    Route("GET", "/v1/invoices", "functions.invoices.invoices_list", U, "The caller's invoices, as seller or buyer",
          key_scope="invoices:read", tags=("invoices",)),
    Route("GET", "/v1/invoices/{id}", "functions.invoices.invoices_get", U,
          "One invoice (its seller and buyer; administrators and auditors: any)", key_scope="invoices:read",
          tags=("invoices",)),
    Route("PATCH", "/v1/invoices/{id}", "functions.invoices.invoices_update", U,
          "Change a pending invoice (its seller; audited before and after)", key_scope="invoices:write",
          tags=("invoices",)),
    Route("DELETE", "/v1/invoices/{id}", "functions.invoices.invoices_delete", U,
          "Withdraw an unpaid invoice (its seller; soft: cancelled and kept)", key_scope="invoices:write",
          tags=("invoices",)),
    Route("POST", "/v1/invoices/{id}/pay", "functions.invoices.invoices_pay", U,
          "Pay an invoice (its buyer) into a new escrow of its own", money=True, limit=MONEY, velocity=True,
          tags=("invoices",)),
    # escrow (issue 17): the machine's edges run through api.money (escrow_transition: the money,
    # the status and the audit row in one statement); opening one is idempotent by its key too
    Route("POST", "/v1/escrows", "functions.escrow.escrows_create", U, "Open an escrow as its buyer (moves nothing)",
          money=True, limit=MONEY, tags=("escrow",)),
    Route("GET", "/v1/escrows", "functions.escrow.escrows_list", U, "The caller's escrows, as buyer or seller",
          tags=("escrow",)),
    Route("GET", "/v1/escrows/{id}", "functions.escrow.escrows_get", U,
          "One escrow (its buyer and seller; administrators and auditors: any), with the caller's next states",
          tags=("escrow",)),
    Route("POST", "/v1/escrows/{id}/fund", "functions.escrow.escrows_fund", U,
          "Pay an escrow from one of the buyer's wallets", money=True, limit=MONEY, velocity=True, tags=("escrow",)),
    Route("POST", "/v1/escrows/{id}/release", "functions.escrow.escrows_release", U,
          "Release an escrow to its seller, less the fee (its buyer)", money=True, limit=MONEY, tags=("escrow",)),
    Route("POST", "/v1/escrows/{id}/refund", "functions.escrow.escrows_refund", U,
          "Refund an escrow to the wallet that paid it (its seller)", money=True, limit=MONEY, tags=("escrow",)),
    Route("POST", "/v1/escrows/{id}/dispute", "functions.escrow.escrows_dispute", U,
          "Dispute a funded escrow (its buyer or seller, within the window)", money=True, limit=MONEY,
          tags=("escrow",)),
    Route("POST", "/v1/admin/escrows/{id}/resolve", "functions.escrow.admin_escrows_resolve", A,
          "Resolve an escrow's dispute: release to the seller or refund the buyer", money=True, limit=MONEY,
          tags=("admin", "escrow")),
    # dispute evidence (issue 17): documents go straight to the private evidence bucket (presigned POST)
    # and become evidence once the stored object matches what was declared
    Route("POST", "/v1/escrows/{id}/dispute/evidence", "functions.escrow.dispute_evidence_create", U,
          "Add evidence to an open dispute (its buyer or seller); a document gets a presigned upload",
          tags=("escrow",), grants=("s3:evidence-write",)),
    Route("GET", "/v1/escrows/{id}/dispute/evidence", "functions.escrow.dispute_evidence_list", U,
          "A dispute's evidence (its buyer and seller; administrators and auditors), with download links",
          tags=("escrow",), grants=("s3:evidence-read",)),
    Route("POST", "/v1/escrows/{id}/dispute/evidence/{evidence_id}/confirm",
          "functions.escrow.dispute_evidence_confirm", U,
          "Confirm an uploaded document: it must match its declared size, type and SHA-256", tags=("escrow",),
          grants=("s3:evidence-read",)),
    # audit readers (issue 15): a user's own events as sentences; the raw trail for admins and auditors
    Route("GET", "/v1/activity", "functions.audit.activity_list", U, "The caller's own events, in plain sentences",
          tags=("activity",)),
    Route("GET", "/v1/admin/audit", "functions.audit.admin_audit_list", AU,
          "The audit trail, filtered, with raw payloads (each read is audited)", tags=("admin", "audit")),
    # reconciliation (issue 16): a day's gateway report against the ledger; runs are queued here
    # and executed by the reconcile job
    Route("POST", "/v1/admin/reconciliations", "functions.reconcile.admin_reconciliations_create", A,
          "Queue a reconciliation run of a provider's day", tags=("admin", "reconciliation")),
    Route("GET", "/v1/admin/reconciliations", "functions.reconcile.admin_reconciliations_list", A,
          "Reconciliation runs, newest first", tags=("admin", "reconciliation")),
    Route("GET", "/v1/admin/reconciliations/{id}/discrepancies", "functions.reconcile.admin_reconciliation_discrepancies",
          A, "What a reconciliation run found", tags=("admin", "reconciliation")),
    Route("PATCH", "/v1/admin/reconciliation-discrepancies/{id}", "functions.reconcile.admin_discrepancies_update", A,
          "Explain or resolve a discrepancy (audited)", tags=("admin", "reconciliation")),
    # fee schedules (issue 17): what fee_quote charges, configured by administrators (audited, before/after)
    Route("GET", "/v1/admin/fees", "functions.admin.fees_list", AU, "Every fee schedule", tags=("admin", "fees")),
    Route("PUT", "/v1/admin/fees", "functions.admin.fees_put", A,
          "Create or replace the fee schedule of a currency and transaction kind (audited)", tags=("admin", "fees")),
    Route("DELETE", "/v1/admin/fees/{currency}/{transaction_kind}", "functions.admin.fees_delete", A,
          "Remove a fee schedule (audited)", tags=("admin", "fees")),
)  # fmt: skip


@cache
def _compiled() -> tuple[tuple[re.Pattern[str], Route], ...]:
    out = []
    for route in ROUTES:
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", re.escape(route.path).replace(r"\{", "{").replace(r"\}", "}"))
        out.append((re.compile(pattern), route))
    return tuple(out)


def match(method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
    """Find the route for a request.

    Returns the route (or None), its path parameters, and the methods allowed on the
    path, so the caller can tell 404 (no such path) from 405 (path exists, wrong method).
    """
    allowed: list[str] = []
    for pattern, route in _compiled():
        m = pattern.fullmatch(path)
        if m:
            allowed.append(route.method)
            if route.method == method.upper():
                return route, m.groupdict(), allowed
    return None, {}, allowed


def by_handler(module: str) -> Route:
    for route in ROUTES:
        if route.handler == module:
            return route
    raise LookupError(f"{module} is not in the route table (ledgerline.routes.ROUTES)")
