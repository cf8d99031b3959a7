"""GET /v1/openapi.json: the OpenAPI 3 document of every route."""

from ledgerline.http import Endpoint, Response, json_response
from ledgerline.http.openapi import document

api = Endpoint(__name__)


@api
def get_openapi() -> Response:
    return json_response(document())


handler = api.handler
