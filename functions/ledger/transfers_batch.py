"""POST /v1/transfers/batch: up to 1,000 transfers from the caller's accounts at once.

Money-moving: one Idempotency-Key for the whole batch; a retry replays the stored
response (every item's result). ``atomic`` refuses the batch at its first bad item
(nothing moves); ``independent`` answers each item's result. One statement does it all
(``api.money``, ``db/routines/transfer_batch.sql``); the route takes bodies up to
``routes.BATCH_MAX_BODY`` and its velocity counts the items.
"""

from ledgerline.http import Endpoint, Response
from ledgerline.ledger.batches import CreateTransferBatch

api = Endpoint(__name__)


@api
def create_transfer_batch(body: CreateTransferBatch) -> Response:
    return api.money("transfer_batch", body.model_dump(mode="json"))


handler = api.handler
