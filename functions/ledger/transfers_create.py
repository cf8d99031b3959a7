"""POST /v1/transfers: move money from one of the caller's accounts to a wallet.

Money-moving: Idempotency-Key required; a retry replays the stored response. One
statement does it all (``api.money``); refusals (insufficient funds, frozen account,
a bad amount...) are stored and audited as ``transfer.failed``.
"""

from ledgerline.http import Endpoint, Response
from ledgerline.ledger.schemas import CreateTransfer

api = Endpoint(__name__)


@api
def create_transfer(body: CreateTransfer) -> Response:
    return api.money("transfer", body.model_dump(mode="json"))


handler = api.handler
