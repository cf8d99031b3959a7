"""PUT /v1/admin/fees: create or replace one fee schedule (administrators; audited with
before and after)."""

from ledgerline import fees
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def put_fee_schedule(body: fees.FeeScheduleBody) -> Response:
    schedule = fees.check_schedule(**body.model_dump())
    actor = api.request.actor
    return json_response(api.write(lambda cur: fees.put_schedule(cur, schedule, actor=actor)))


handler = api.handler
