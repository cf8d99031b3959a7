"""GET /v1/admin/users/{id}/countries: the countries a user has logged in from (administrators)."""

from ledgerline.auth import new_country
from ledgerline.http import Endpoint, Response, json_response
from ledgerline.ids import object_id

api = Endpoint(__name__)


@api
def list_user_countries(id: str) -> Response:
    user_id = object_id(id, "user")
    items = api.read(lambda cur: new_country.list_known(cur, user_id))
    return json_response({"items": [c.to_json() for c in items], "next_cursor": None})


handler = api.handler
