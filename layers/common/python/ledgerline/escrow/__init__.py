"""Escrow (issue 17; docs/api.md "Escrow"): a buyer's money held in an account of its own
until it is released to the seller (less the fee), refunded, or a dispute is resolved.

    AWAITING_PAYMENT ─fund─► FUNDED ─release─► RELEASED
                               ├──refund──► REFUNDED
                               └─dispute─► DISPUTED ─resolve─► RESOLVED_RELEASED | RESOLVED_REFUNDED

The machine is data (``escrow_transitions``, migration 0021) and the database enforces it
(``escrow_guard``). Every edge runs through ``api.money``: one ``money_call`` statement
runs ``escrow_transition`` (``db/routines/``), which moves the edge's money, the status and
the audit row together. This package holds the reads: the model, one escrow, a caller's
list, and what the caller may do next.
"""

from ledgerline.escrow.model import Escrow
from ledgerline.escrow.reads import get_escrow, list_escrows

__all__ = ["Escrow", "get_escrow", "list_escrows"]
