"""POST /v1/escrows/{id}/fund: the buyer pays the escrow from one of their wallets
(AWAITING_PAYMENT -> FUNDED)."""

from ledgerline.escrow.model import FundEscrow
from ledgerline.escrow.requests import transition_args
from ledgerline.http import Endpoint, Response

api = Endpoint(__name__)


@api
def fund_escrow(id: str, body: FundEscrow) -> Response:
    return api.money("escrow_fund", transition_args(id, account_id=str(body.account_id)))


handler = api.handler
