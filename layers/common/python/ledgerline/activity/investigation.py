"""GET /v1/admin/audit: the audit trail as it is, filtered, for administrators and auditors.

Raw before/after payloads, newest first, a page at a time. Every filter is untrusted
text, checked here (a bad id, address or instant is a 422 naming the field, never a 500
and never an empty page that looks like an answer). Reading the trail is itself
audited: one ``audit.report_generated`` row per request, with the filters, in the same
transaction as the read (a read that cannot be audited returns nothing).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from ledgerline import audit, errors, instants, pagination
from ledgerline.db import Cursor

_ACTION = re.compile(r"[a-z_]+(\.[a-z_]+)+")
_RESOURCE_TYPE = re.compile(r"[a-z_]+")
MAX_TEXT = 200


@dataclass(frozen=True)
class Filters:
    actor_id: UUID | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    ip: str | None = None  # an address or a network (CIDR): rows whose actor_ip is in it
    from_: datetime | None = None  # inclusive
    to: datetime | None = None  # exclusive

    @classmethod
    def parse(
        cls,
        *,
        actor_id: str | None = None,
        action: str | None = None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        ip: str | None = None,
        from_: str | None = None,
        to: str | None = None,
    ) -> Filters:
        filters = cls(
            actor_id=_uuid(actor_id, "actor_id") if actor_id is not None else None,
            action=_matching(action, _ACTION, "action", "an action such as transfer.completed"),
            resource_type=_matching(resource_type, _RESOURCE_TYPE, "resource_type", "a type such as transfer"),
            resource_id=_text(resource_id, "resource_id"),
            ip=_network(ip) if ip is not None else None,
            from_=instants.parse(from_, "from") if from_ is not None else None,
            to=instants.parse(to, "to") if to is not None else None,
        )
        if filters.from_ and filters.to and filters.from_ >= filters.to:
            raise _refuse("to", "must be after from")
        return filters

    def to_json(self) -> dict[str, Any]:
        """The filters given, as the audit row of the read keeps them."""
        shown = {("from" if k == "from_" else k): v for k, v in asdict(self).items() if v is not None}
        return {k: (v.isoformat() if isinstance(v, datetime) else str(v)) for k, v in shown.items()}


@dataclass(frozen=True)
class AuditRecord:
    id: UUID
    at: datetime
    actor_id: UUID | None
    actor_type: str
    actor_ip: str | None
    action: str
    resource_type: str
    resource_id: str | None
    payload_before: Any
    payload_after: Any
    metadata: dict[str, Any]
    # Where an authentication event came from: its session's place, else the place the
    # login recorded in the row, else its address's place looked up now; None for other
    # categories or an unplaced address.
    country: str | None = None
    city: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_QUERY = """
SELECT id, occurred_at AS created_at, actor_id, actor_type, host(actor_ip) AS actor_ip, action, resource_type,
       resource_id, payload_before, payload_after, metadata,
       CASE WHEN category = 'auth' THEN coalesce(place.country, metadata->>'country') END AS country,
       CASE WHEN category = 'auth' THEN coalesce(place.city, metadata->>'city') END AS city,
       category = 'auth' AS auth_event
  FROM audit_log
  LEFT JOIN LATERAL (
    SELECT s.country, s.city FROM sessions s
     WHERE audit_log.resource_type = 'session'
       AND s.id = CASE WHEN audit_log.resource_id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                       THEN audit_log.resource_id::uuid END
  ) place ON true
 WHERE (%(actor_id)s::uuid IS NULL OR actor_id = %(actor_id)s::uuid)
   AND (%(action)s::text IS NULL OR action = %(action)s::text)
   AND (%(resource_type)s::text IS NULL OR resource_type = %(resource_type)s::text)
   AND (%(resource_id)s::text IS NULL OR resource_id = %(resource_id)s::text)
   AND (%(ip)s::inet IS NULL OR actor_ip <<= %(ip)s::inet)
   AND (%(from_)s::timestamptz IS NULL OR occurred_at >= %(from_)s::timestamptz)
   AND (%(to)s::timestamptz IS NULL OR occurred_at < %(to)s::timestamptz)
   AND (%(after_at)s::timestamptz IS NULL OR (occurred_at, id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
 ORDER BY occurred_at DESC, id DESC
 LIMIT %(n)s
"""


def list_audit(
    cur: Cursor, filters: Filters, *, actor: audit.Actor, limit: int | None = None, cursor: str | None = None
) -> tuple[list[AuditRecord], str | None]:
    """One page of the trail, and the audit row saying who read it with which filters."""
    n = pagination.check_limit(limit)
    after = pagination.decode(cursor)
    params = asdict(filters) | {
        "actor_id": filters.actor_id,
        "after_at": after[0] if after else None,
        "after_id": after[1] if after else None,
        "n": n + 1,
    }
    cur.execute(_QUERY, params)
    rows, next_cursor = pagination.page(cur.fetchall(), n)
    audit.record(
        cur, actor, "audit.report_generated", "audit_log",
        metadata={"filters": filters.to_json(), "cursor": cursor, "limit": n, "returned": len(rows)},
    )  # fmt: skip
    return [_record(row) for row in rows], next_cursor


def _record(row: dict[str, Any]) -> AuditRecord:
    country, city = row["country"], row["city"]
    if row["auth_event"] and country is None and row["actor_ip"]:
        # No session and no place recorded (a failed login, a refused token): where the
        # address is, looked up now, offline (the lookup loads on this route's first use).
        from ledgerline import geo

        place = geo.lookup(row["actor_ip"])
        country, city = place.country, place.city
    return AuditRecord(
        id=row["id"],
        at=row["created_at"],
        actor_id=row["actor_id"],
        actor_type=row["actor_type"],
        actor_ip=row["actor_ip"],
        action=row["action"],
        resource_type=row["resource_type"],
        resource_id=row["resource_id"],
        payload_before=row["payload_before"],
        payload_after=row["payload_after"],
        metadata=row["metadata"],
        country=country,
        city=city,
    )


def _refuse(field: str, message: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(f"{field}: {message}", errors=[errors.FieldError(field, message)])


def _uuid(value: str, field: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise _refuse(field, "not a UUID") from None


def _text(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    if not value or len(value) > MAX_TEXT or "\x00" in value:
        raise _refuse(field, f"give 1 to {MAX_TEXT} characters")
    return value


def _matching(value: str | None, pattern: re.Pattern[str], field: str, example: str) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_TEXT or not pattern.fullmatch(value):
        raise _refuse(field, f"use {example}")
    return value


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise _refuse("ip", "use an IP address or a network such as 203.0.113.0/24") from None
