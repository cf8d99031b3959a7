"""The input gate: what any request must be before a route looks at it.

One gate for every route, so no handler has to remember it:

- a body is JSON (``application/json`` or ``application/*+json``; anything else is 415),
  in UTF-8 (400), at most 64 KB (413), nested at most ``MAX_DEPTH`` deep (400), with no
  repeated key (400: two readers could take different values) and no number longer than
  ``MAX_NUMBER_LENGTH`` characters or digits of magnitude (422);
- no text anywhere (body keys and values, query, path, headers) holds a NUL or a lone
  surrogate, which PostgreSQL cannot store (422, naming the field).

The body is parsed once, here, with ``Decimal`` for every fraction (never a float).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ledgerline import errors

MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 32
MAX_NUMBER_LENGTH = 40
_JSON_TYPE = re.compile(r"application/(?:[\w.+-]+\+)?json")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class _NumberTooLong(ValueError):
    pass


class _RepeatedKey(ValueError):
    pass


def check(event: Mapping[str, Any], *, max_body_bytes: int = MAX_BODY_BYTES) -> Any:
    """Refuse a request no route may see; return its parsed body (None without one)."""
    headers = event.get("headers") or {}
    for name, value in headers.items():
        _check_text(value, f"header {name}")
    for where in ("queryStringParameters", "pathParameters"):
        for name, value in (event.get(where) or {}).items():
            _check_text(name, name)
            _check_text(value, name)
    raw = _raw_body(event)
    if len(raw) > max_body_bytes:
        raise errors.PayloadTooLarge(f"the request body is {len(raw)} bytes; the limit is {max_body_bytes}")
    if not raw:
        return None
    _check_media_type(headers)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.BadRequest("the request body is not UTF-8 text; send JSON encoded as UTF-8") from None
    body = _parse(text)
    _check_tree(body)
    return body


def _raw_body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return body.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise errors.BadRequest("the request body is not valid base64") from None


def _check_media_type(headers: Mapping[str, str]) -> None:
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    media, *params = (part.strip().lower() for part in content_type.split(";"))
    charset = next((p.partition("=")[2].strip('"') for p in params if p.startswith("charset=")), "utf-8")
    if not _JSON_TYPE.fullmatch(media) or charset not in ("utf-8", "utf8"):
        shown = content_type[:100] or "none"
        raise errors.UnsupportedMediaType(
            f"the body's Content-Type is {shown!r}; send JSON with Content-Type: application/json"
        )


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_LENGTH:
        raise _NumberTooLong
    return int(text)


def _decimal(text: str) -> Decimal:
    value = Decimal(text) if len(text) <= MAX_NUMBER_LENGTH else None
    # 1e99999 is short text for a number no field here can hold (nor convert cheaply).
    if value is None or abs(value.adjusted()) > MAX_NUMBER_LENGTH:
        raise _NumberTooLong
    return value


def _constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _RepeatedKey
    return out


def _parse(text: str) -> Any:
    try:
        return json.loads(
            text, parse_int=_int, parse_float=_decimal, parse_constant=_constant, object_pairs_hook=_object
        )
    except json.JSONDecodeError:
        raise errors.BadRequest("the request body is not valid JSON") from None
    except RecursionError:
        raise errors.BadRequest(f"the request body is nested more than {MAX_DEPTH} levels deep") from None
    except _RepeatedKey:
        raise errors.BadRequest("the request body repeats a key in one object; send each field once") from None
    except _NumberTooLong:
        raise errors.ValidationFailed(
            f"a number in the request body is longer than {MAX_NUMBER_LENGTH} characters",
            errors=[errors.FieldError("body", f"numbers have at most {MAX_NUMBER_LENGTH} characters")],
        ) from None


def _check_tree(body: Any) -> None:
    """Depth and storable text of every key and value, without recursion."""
    stack: list[tuple[Any, str, int]] = [(body, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value, path or "body")
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise errors.BadRequest(f"the request body is nested more than {MAX_DEPTH} levels deep")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                name = f"{path}.{key}" if path else str(key)
                if isinstance(key, str):
                    _check_text(key, name)
                stack.append((item, name, depth + 1))


def _check_text(value: Any, field: str) -> None:
    if isinstance(value, str) and _UNSTORABLE.search(value):
        raise errors.ValidationFailed(
            f"{field} holds a NUL character or broken Unicode; remove it",
            errors=[errors.FieldError(field, "no NUL characters or unpaired surrogates")],
        )
