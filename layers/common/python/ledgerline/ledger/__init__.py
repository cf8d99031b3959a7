"""The ledger: accounts, balanced multi-leg transactions, holds, reversals, balances.

Domain functions take a cursor (the caller owns the transaction) and raise
``ledgerline.errors.DomainError`` subclasses for refusals. Money moves only through the
database functions of ``ledgerline/db/routines/`` (one file each), one call per operation.
"""

from ledgerline.ledger.accounts import (
    close,
    freeze,
    get_account,
    list_accounts,
    open_account,
    set_status,
    system_account,
    unfreeze,
)
from ledgerline.ledger.balances import balance_at, fold, list_entries, query_balance
from ledgerline.ledger.corrections import adjust, reverse
from ledgerline.ledger.holds import capture_hold, create_hold, expire_due, get_hold, void_hold
from ledgerline.ledger.invariants import Finding, check_invariants, rebuild_balances
from ledgerline.ledger.model import Account, Balance, Entry, Hold, Transaction, Transfer
from ledgerline.ledger.postings import Leg, get_transaction, post_transaction
from ledgerline.ledger.transfers import get_transfer, transfer

__all__ = [
    "Account",
    "Balance",
    "Entry",
    "Finding",
    "Hold",
    "Leg",
    "Transaction",
    "Transfer",
    "adjust",
    "balance_at",
    "capture_hold",
    "check_invariants",
    "close",
    "create_hold",
    "expire_due",
    "fold",
    "freeze",
    "get_account",
    "get_hold",
    "get_transaction",
    "get_transfer",
    "list_accounts",
    "list_entries",
    "open_account",
    "post_transaction",
    "query_balance",
    "rebuild_balances",
    "reverse",
    "set_status",
    "system_account",
    "transfer",
    "unfreeze",
    "void_hold",
]
