"""PATCH /v1/admin/users/{id}: change a user's role or status (administrators; audited)."""

from ledgerline.auth import users
from ledgerline.auth.schemas import UserUpdateBody
from ledgerline.http import Endpoint, Response, json_response
from ledgerline.ids import object_id

api = Endpoint(__name__)


@api
def update_user(id: str, body: UserUpdateBody) -> Response:
    user_id = object_id(id, "user")
    actor = api.request.actor
    user = api.write(lambda cur: users.update_user(cur, user_id, role=body.role, status=body.status, actor=actor))
    return json_response(user.to_json())


handler = api.handler
