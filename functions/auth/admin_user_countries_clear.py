"""DELETE /v1/admin/users/{id}/countries/{country}: forget a known login country (administrators;
audited). The user's next login from it needs a second factor again."""

import re

from ledgerline import errors
from ledgerline.auth import new_country
from ledgerline.http import Endpoint, Response
from ledgerline.ids import object_id

api = Endpoint(__name__)
_COUNTRY = re.compile(r"[A-Za-z]{2}")


@api
def clear_user_country(id: str, country: str) -> Response:
    user_id = object_id(id, "user")
    if not _COUNTRY.fullmatch(country):
        raise errors.ValidationFailed(
            "country must be an ISO 3166-1 alpha-2 code such as NG",
            errors=[errors.FieldError("country", "use two letters, such as NG")],
        )
    actor = api.request.actor
    api.write(lambda cur: new_country.clear(cur, user_id, country.upper(), actor))
    return Response(status_code=204)


handler = api.handler
