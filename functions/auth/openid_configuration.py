"""GET /.well-known/openid-configuration: where API Gateway's JWT authorizer finds the JWKS."""

from ledgerline.config import settings
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def get_openid_configuration() -> Response:
    issuer = settings().jwt_issuer.rstrip("/")
    return json_response(
        {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint": f"{issuer}/v1/auth/login",
        },
        headers={"Cache-Control": "public, max-age=300"},
    )


handler = api.handler
