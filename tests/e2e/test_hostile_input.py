"""Every route, every hostile input: only a 4xx problem+json, never a 500, nothing changed.

One parametrized test over the whole route table, so a new route is covered the day it
is added: a body that is not UTF-8, a NUL in a body string and in a query value, JSON
nested 20,000 deep, a 5,000-digit number, a repeated key, a media type other than JSON,
and a well-formed cursor this API never issued.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from ledgerline import routes


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


FOREIGN_CURSOR = _b64(json.dumps({"t": 1, "id": 2}))
YEAR_ZERO_CURSOR = _b64(f"0001-01-01T00:00:00+14:00|{uuid.UUID(int=0)}")

HOSTILE = {
    "not-utf8": {"data": b'{"name": "\xff\xfe"}', "headers": {"Content-Type": "application/json"}},
    "nul-in-body": {"data": b'{"name": "a\\u0000b", "email": "x\\u0000@example.com"}'},
    "lone-surrogate": {"data": b'{"name": "\\ud800"}'},
    "nul-in-query": {"params": {"cursor": "a\x00b", "email": "\x00"}},
    "deep-nesting": {"data": b"[" * 20_000 + b"]" * 20_000},
    "huge-number": {"data": b'{"amount": ' + b"9" * 5_000 + b', "limit": 1}'},
    "huge-fraction": {"data": b'{"amount": 0.' + b"1" * 5_000 + b"}"},
    "nan": {"data": b'{"amount": NaN}'},
    "repeated-key": {"data": b'{"amount": "1.00", "amount": "1000.00"}'},
    "text-plain": {"data": b"{}", "headers": {"Content-Type": "text/plain"}},
    "xml": {"data": b"<a/>", "headers": {"Content-Type": "application/xml"}},
    "form": {"data": b"a=1", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
    "json-latin1": {"data": b"{}", "headers": {"Content-Type": "application/json; charset=latin-1"}},
    "foreign-cursor": {"params": {"cursor": FOREIGN_CURSOR}},
    "year-zero-instant": {"params": {"at": "0001-01-01T00:00:00+14:00", "cursor": YEAR_ZERO_CURSOR}},
}


def _path(route: routes.Route) -> str:
    return route.path.replace("{id}", str(uuid.uuid4()))


@pytest.fixture(scope="module")
def callers(person, admin):
    return {routes.Access.ADMIN: admin, routes.Access.AUDITOR: admin, routes.Access.USER: person()}


@pytest.mark.parametrize("kind", list(HOSTILE))
@pytest.mark.parametrize("route", routes.ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_hostile_input_is_a_4xx_problem_on_every_route(client, callers, route, kind, owner_conn):
    caller = client if route.public else callers[route.access]
    spec = dict(HOSTILE[kind])
    headers = {"Content-Type": "application/json", **spec.pop("headers", {})}
    if route.money:
        headers["Idempotency-Key"] = str(uuid.uuid4())
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM transactions")
        before = cur.fetchone()[0]

    r = caller.request(route.method, _path(route), headers=headers, **spec)

    # A cursor or instant only matters to a route that reads one; every other input is
    # refused by the gate in front of every route.
    ignorable = kind in ("foreign-cursor", "year-zero-instant")
    assert r.status_code < 500 if ignorable else 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert r.headers["Content-Type"] == "application/problem+json", r.text[:300]
        assert {"type", "title", "status", "detail", "code"} <= set(r.json())
    with owner_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM transactions")
        assert cur.fetchone()[0] == before


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("not-utf8", 400, "bad_request"),
        ("nul-in-body", 422, "validation_error"),
        ("lone-surrogate", 422, "validation_error"),
        ("deep-nesting", 400, "bad_request"),
        ("huge-number", 422, "validation_error"),
        ("nan", 400, "bad_request"),
        ("repeated-key", 400, "bad_request"),
        ("text-plain", 415, "unsupported_media_type"),
        ("form", 415, "unsupported_media_type"),
    ],
)
def test_each_hostile_body_gets_its_own_clear_answer(client, kind, status, code):
    spec = dict(HOSTILE[kind])
    headers = {"Content-Type": "application/json", **spec.pop("headers", {})}

    r = client.post("/v1/auth/login", headers=headers, **spec)

    assert (r.status_code, r.json()["code"]) == (status, code), r.text


def test_a_foreign_cursor_names_the_cursor(admin, person):
    for caller, path in ((admin, "/v1/admin/users"), (person(), "/v1/me/sessions"), (person(), "/v1/accounts")):
        r = caller.get(path, params={"cursor": FOREIGN_CURSOR})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cursor", (path, r.text)


def test_an_instant_out_of_range_names_the_field(person):
    alice = person()
    account = alice.post("/v1/accounts", json={"currency": "NGN"}).json()["id"]

    for at in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-10:00", "2024-01-01", "yesterday"):
        r = alice.get(f"/v1/accounts/{account}/balance", params={"at": at})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "at", (at, r.text)
