"""Batch transfers (``POST /v1/transfers/batch``): up to ``MAX_ITEMS`` transfers in one
request and one database statement (``db/routines/transfer_batch.sql``).

``atomic``: all or nothing, the first refused item refuses the batch. ``independent``:
each item its own result, in order. Either way every balance the batch touches is locked
up front in account-id order, so overlapping batches queue instead of deadlocking.
Not ``ledgerline.batches``: that is the job runner's drain loop.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ledgerline.ledger.schemas import CreateTransfer, _Body

MAX_ITEMS = 1000


class CreateTransferBatch(_Body):
    mode: Literal["atomic", "independent"] = Field(
        description="atomic: all or nothing; independent: each transfer posts or is refused on its own"
    )
    transfers: list[CreateTransfer] = Field(
        min_length=1, max_length=MAX_ITEMS, description=f"1 to {MAX_ITEMS:,} transfers, each as POST /v1/transfers"
    )
