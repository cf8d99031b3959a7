"""GET /v1/admin/fees: every fee schedule (administrators and auditors)."""

from ledgerline import fees
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def list_fee_schedules() -> Response:
    # One row per currency and kind: the whole list is one page.
    return json_response({"items": api.read(fees.list_schedules), "next_cursor": None})


handler = api.handler
