"""GET /.well-known/jwks.json: the public keys that verify access tokens."""

from ledgerline.auth import keys
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def get_jwks() -> Response:
    # Short cache: a rotated-in key must reach verifiers well within a token's lifetime.
    return json_response(keys.jwks(), headers={"Cache-Control": "public, max-age=300"})


handler = api.handler
