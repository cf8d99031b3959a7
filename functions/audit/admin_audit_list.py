"""GET /v1/admin/audit: the raw audit trail, filtered (administrators and auditors); each
read writes its own audit row."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from ledgerline import activity
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def list_audit(
    actor_id: str | None = None,
    action: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    ip: Annotated[str | None, Query(description="an IP address or a CIDR network")] = None,
    from_: Annotated[str | None, Query(alias="from", description="RFC 3339 instant, inclusive")] = None,
    to: Annotated[str | None, Query(description="RFC 3339 instant, exclusive")] = None,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
    cursor: str | None = None,
) -> Response:
    filters = activity.Filters.parse(
        actor_id=actor_id, action=action, resource_type=resource_type, resource_id=resource_id, ip=ip,
        from_=from_, to=to,
    )  # fmt: skip
    actor = api.request.actor
    items, next_cursor = api.write(
        lambda cur: activity.list_audit(cur, filters, actor=actor, limit=limit, cursor=cursor)
    )
    return json_response({"items": [i.to_json() for i in items], "next_cursor": next_cursor})


handler = api.handler
