"""DELETE /v1/admin/fees/{currency}/{transaction_kind}: remove one fee schedule
(administrators; audited with the schedule removed)."""

from ledgerline import fees
from ledgerline.http import Endpoint, Response

api = Endpoint(__name__)


@api
def delete_fee_schedule(currency: str, transaction_kind: str) -> Response:
    actor = api.request.actor
    api.write(lambda cur: fees.delete_schedule(cur, currency, transaction_kind, actor=actor))
    return Response(status_code=204)


handler = api.handler
