"""POST /v1/admin/adjustments: a manual, audited movement between an account and its
currency's adjustments system account (administrators; Idempotency-Key required)."""

from ledgerline.http import Endpoint, Response
from ledgerline.ledger.schemas import CreateAdjustment

api = Endpoint(__name__)


@api
def create_adjustment(body: CreateAdjustment) -> Response:
    return api.money("adjust", body.model_dump(mode="json"))


handler = api.handler
