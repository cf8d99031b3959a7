"""The money operations money routes run (``Endpoint.money``), one row each.

The database runs them (``money_op`` in one ``money_call`` statement, ``db/routines/``);
this table says, for each, the status of a success and the audit actions of a success
and of a refusal, so both sides read them from one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ledgerline import audit
from ledgerline.audit import Actor
from ledgerline.ledger.model import USER_CREDITABLE_KINDS


@dataclass(frozen=True)
class Operation:
    name: str  # money_op's
    status: int  # of a success
    done: str  # audit action of a success
    failed: str  # audit action of a refusal (and of a crash)
    # Its SQL writes outbox rows (a notification, a merchant event): the Endpoint publishes
    # them right after the statement instead of leaving them to the relay's sweep. The
    # route needs the send grants of their queues.
    publishes: bool = False

    def __post_init__(self) -> None:
        # An action outside the audit trail's known namespaces is refused when the table
        # is built, not when the first request is audited.
        if audit.category_of(self.done) != audit.category_of(self.failed):
            raise ValueError(f"{self.name}: {self.done!r} and {self.failed!r} are audited in different categories")

    def arguments(self, args: dict[str, Any], *, owner: UUID | None) -> dict[str, Any]:
        """What ``money_op`` receives: the request's arguments and the operation's rules.
        ``owner``: the caller on user routes (object-level checks); None for administrators."""
        return {
            **args,
            "owner_id": owner,
            # A user pays wallets (and escrow accounts), never a system account.
            "credit_kinds": list(USER_CREDITABLE_KINDS) if owner is not None else None,
            "status": self.status,
            "audit": {"done": self.done, "failed": self.failed, "category": audit.category_of(self.done)},
            "request": args,
        }

    def record_crash(self, actor: Actor, args: dict[str, Any]) -> None:
        """Audit an operation that failed with no answer (rolled back whole), in a
        transaction of its own, so the attempt is on record."""
        from ledgerline.db import transaction
        from ledgerline.observability import logger

        error = {"status": 500, "code": "internal_error"}
        try:
            transaction(
                lambda cur: audit.record(
                    cur, actor, self.failed, self.name, None, metadata={"request": args.get("request"), "error": error}
                ),
                attempts=2,
            )
        except Exception:
            logger.exception("could not record the failed operation")


OPERATIONS: tuple[Operation, ...] = (
    Operation("transfer", 201, "transfer.completed", "transfer.failed"),
    # batch transfers (issue 19; db/routines/transfer_batch.sql): one bulk row, plus each posted item's own
    Operation("transfer_batch", 201, "transfer.batch_completed", "transfer.batch_failed"),
    Operation("hold_create", 201, "hold.created", "hold.failed"),
    Operation("hold_capture", 200, "hold.captured", "hold.failed"),
    Operation("hold_void", 200, "hold.voided", "hold.failed"),
    Operation("adjust", 201, "ledger.adjustment.posted", "ledger.adjustment.failed"),
    Operation("reverse", 201, "ledger.transaction.reversed", "ledger.transaction.reversal_failed"),
    Operation("withdrawal_request", 201, "withdrawal.requested", "withdrawal.request_failed"),
    Operation("withdrawal_approve", 200, "withdrawal.approved", "withdrawal.approval_failed"),
    Operation("withdrawal_reject", 200, "withdrawal.rejected", "withdrawal.rejection_failed", publishes=True),
    # bulk payouts (issue 19; db/routines/bulk_payout_*.sql): each item a withdrawal; the last
    # approval queues every item's payout
    Operation("bulk_payout_request", 201, "bulk_payout.requested", "bulk_payout.request_failed", publishes=True),
    Operation("bulk_payout_approve", 200, "bulk_payout.approved", "bulk_payout.approval_failed", publishes=True),
    Operation("bulk_payout_reject", 200, "bulk_payout.rejected", "bulk_payout.rejection_failed", publishes=True),
    Operation("topup", 201, "payment.initiated", "payment.initiation_failed"),
    Operation("payment_resolve", 200, "payment.resolved", "payment.resolution_failed", publishes=True),
    # invoices (issue 17; db/routines/invoice_pay.sql): the buyer's money into a new escrow of the invoice
    Operation("invoice_pay", 200, "invoice.paid", "invoice.payment_failed"),
    # escrow (issue 17; db/routines/escrow_*.sql): opening one moves nothing, but is
    # idempotent by its key like the edges that move its money
    Operation("escrow_open", 201, "escrow.created", "escrow.create_failed"),
    Operation("escrow_fund", 200, "escrow.funded", "escrow.fund_failed"),
    Operation("escrow_release", 200, "escrow.released", "escrow.release_failed"),
    Operation("escrow_refund", 200, "escrow.refunded", "escrow.refund_failed"),
    Operation("escrow_dispute", 200, "dispute.raised", "dispute.raise_failed"),
    Operation("escrow_resolve", 200, "dispute.resolved", "dispute.resolve_failed"),
)


def by_name(name: str) -> Operation:
    for op in OPERATIONS:
        if op.name == name:
            return op
    raise LookupError(f"no money operation {name!r} (ledgerline.ledger.operations.OPERATIONS)")
