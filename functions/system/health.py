"""GET /v1/health: is the database reachable, and at which schema version."""

from ledgerline import health
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def get_health() -> Response:
    report = health.check()
    return json_response(report, 200 if report["database"] == "ok" else 503)


handler = api.handler
