"""GET /v1/admin/fees: every fee schedule (administrators and auditors)."""

from ledgerline import fees
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def list_fee_schedules() -> Response:
    return json_response({"items": api.read(fees.list_schedules)})


handler = api.handler
