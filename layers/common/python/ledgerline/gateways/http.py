"""The one HTTP client every gateway adapter uses: a timeout on every attempt, bounded
retries with backoff on what may pass (connection errors, timeouts, 5xx, 429), none on
what will not (any other 4xx).

Retrying a POST is safe only because every adapter makes its POSTs idempotent (a
reference the provider deduplicates on, or an ``Idempotency-Key``). JSON answers are
parsed with ``Decimal`` for every fraction, and JSON bodies are written with ``Decimal``
as a JSON number: money never passes through a float.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NotRequired, TypedDict, Unpack
from urllib.parse import urlencode

import urllib3

from ledgerline.gateways.base import GatewayRefused, GatewayUnavailable

logger = logging.getLogger("ledgerline.gateways")

# One pool for the process: connections to a provider are reused across calls (a warm
# Lambda keeps them), and urllib3's own retries are off: the loop below owns them.
_pool = urllib3.PoolManager(num_pools=8, maxsize=8, retries=False)

MAX_BACKOFF_SECONDS = 5.0
MAX_RETRY_AFTER_SECONDS = 10.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # parsed JSON (Decimal fractions), or the text when it is not JSON
    headers: Mapping[str, str]


ErrorReader = Callable[[Any], tuple[str, str | None]]  # body → (message, code)


def _no_reader(body: Any) -> tuple[str, str | None]:
    return (str(body)[:200], None)


class HttpClient:
    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        headers: Mapping[str, str],
        timeout: float,
        retries: int,
        backoff: float = 0.25,
        read_error: ErrorReader = _no_reader,
    ) -> None:
        if retries < 0 or timeout <= 0:
            raise ValueError("a gateway client needs a positive timeout and retries >= 0")
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.read_error = read_error

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Answer:
        return self.request("GET", path, params=params)

    def post_json(self, path: str, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Answer:
        return self.request(
            "POST", path, body=json_bytes(body), headers={"Content-Type": "application/json", **(headers or {})}
        )

    def post_form(self, path: str, form: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Answer:
        encoded = urlencode(list(form.items())).encode()
        return self.request(
            "POST", path, body=encoded, headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """One call with its retries: the 2xx answer, or GatewayRefused / GatewayUnavailable."""
        url = self.base_url + path
        if params:
            url += "?" + urlencode([(k, v) for k, v in params.items() if v is not None], doseq=True)
        all_headers = {"Accept": "application/json", **self.headers, **(headers or {})}
        what = f"{self.provider} {method} {path}"
        last = ""
        retry_after: float | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self._pause(attempt, retry_after))
            retry_after = None
            try:
                response = _pool.request(
                    method,
                    url,
                    body=body,
                    headers=all_headers,
                    timeout=urllib3.Timeout(total=self.timeout),
                    redirect=False,
                )
            except urllib3.exceptions.HTTPError as exc:  # timeouts, refused connections, resets
                last = f"{type(exc).__name__}"
                logger.warning("gateway call failed (%s), attempt %d: %s", what, attempt + 1, last)
                continue
            answer = Answer(response.status, parse_json(response.data), dict(response.headers))
            if 200 <= answer.status < 300:
                return answer
            if answer.status == 429 or answer.status >= 500:
                last = f"HTTP {answer.status}"
                retry_after = _retry_after(answer.headers)
                logger.warning("gateway call failed (%s), attempt %d: %s", what, attempt + 1, last)
                continue
            message, code = self.read_error(answer.body)
            raise GatewayRefused(f"{what}: HTTP {answer.status}: {message}", status=answer.status, code=code)
        raise GatewayUnavailable(f"{what}: {last} after {self.retries + 1} attempts")

    def _pause(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_SECONDS)
        # Full jitter: callers that failed together do not come back together.
        return random.uniform(0, min(MAX_BACKOFF_SECONDS, self.backoff * 2 ** (attempt - 1)))  # noqa: S311


class Connection(TypedDict):
    """How an adapter reaches its provider: its secret key, and from the settings its base
    URL, timeout, retries and backoff (the keyword arguments every adapter takes)."""

    secret_key: str
    base_url: str
    timeout: float
    retries: int
    backoff: NotRequired[float]


class Adapter:
    """The constructor every adapter shares: one ``HttpClient`` for its provider that sends
    the secret key as a Bearer token (all three providers authenticate so: GATEWAYS.md).
    A subclass names its ``provider`` and how its error bodies read (``read_error``)."""

    provider: str
    read_error = staticmethod(_no_reader)

    def __init__(self, **connection: Unpack[Connection]) -> None:
        self._secret_key = connection["secret_key"]
        self._http = HttpClient(
            self.provider,
            connection["base_url"],
            headers={"Authorization": f"Bearer {self._secret_key}"},
            timeout=connection["timeout"],
            retries=connection["retries"],
            backoff=connection.get("backoff", 0.25),
            read_error=self.read_error,
        )


@contextmanager
def reading(provider: str, what: str) -> Iterator[None]:
    """Around reading a provider's 2xx answer: one this adapter cannot read (a field missing
    or of another type, a proxy's page in place of JSON) is GatewayUnavailable, so it is
    retried and, if it persists, dead-lettered and alarmed on; never taken for a refusal."""
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        raise GatewayUnavailable(
            f"{provider} {what}: an answer this adapter cannot read ({type(exc).__name__})"
        ) from exc


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def parse_json(data: bytes) -> Any:
    try:
        return json.loads(data, parse_float=Decimal)
    except ValueError:
        return data.decode(errors="replace")


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 instant as Paystack and Flutterwave write it (``Z`` for UTC); None for none."""
    if not value or not isinstance(value, str):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def json_bytes(value: Any) -> bytes:
    """Compact JSON with ``Decimal`` written as a number (Flutterwave's amounts are JSON
    numbers in major units; a float would round them)."""
    return _encode(value).encode()


def _encode(value: Any) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("a non-finite Decimal has no JSON form")
        return format(value, "f")
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    if isinstance(value, float):
        raise TypeError("floats are not money: use Decimal")
    return json.dumps(value, ensure_ascii=False)
