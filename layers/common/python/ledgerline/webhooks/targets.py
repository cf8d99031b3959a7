"""Where a webhook may be sent: the SSRF guard and the connection to the checked address.

In AWS (``allow_private_webhook_targets`` false) a URL must be ``https`` and every address
its host resolves to must be public: not private, loopback, link-local (169.254.169.254,
the instance metadata service), multicast, reserved, unspecified or shared (CGNAT), in IPv4
or IPv6, an IPv4-mapped or NAT64 IPv6 address judged by the IPv4 inside it. The check runs
at registration and again at every delivery (DNS can change), and the delivery connects
to the very address that was checked (no second lookup an attacker could answer
differently: DNS rebinding). Redirects are never followed.

Locally (laptop, tests) private targets and plain ``http`` are allowed.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from ledgerline import errors

MAX_URL_LENGTH = 2048
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(ValueError):
    """The URL names a target webhooks may not reach."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written (the Host header and TLS name)
    port: int
    path: str  # path and query
    addresses: tuple[str, ...]  # the checked addresses, tried in order (as a resolver's answer)


def parse(url: str, *, allow_private: bool) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of a URL webhooks may use, or TargetRefused."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise TargetRefused("the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"not a URL: {exc}") from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise TargetRefused(f"the URL must start with {' or '.join(s + '://' for s in schemes)}")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("the URL must not carry credentials")
    if not parts.hostname:
        raise TargetRefused("the URL names no host")
    if parts.fragment:
        raise TargetRefused("the URL must not have a fragment")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def refusal(address: Address) -> str | None:
    """Why ``address`` is not a public one, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None)
        if inner is not None:
            return refusal(inner)
    for reason in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(address, f"is_{reason}"):
            return reason.replace("_", "-")
    if not address.is_global:  # shared address space (100.64/10), documentation ranges ...
        return "not-global"
    return None


def resolve(host: str, port: int) -> list[Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:
        raise TargetRefused(f"the host {host} does not resolve ({exc})") from None
    seen: dict[str, Address] = {}
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]  # an IPv6 scope id is not part of the address
        seen.setdefault(text, ipaddress.ip_address(text))
    if not seen:
        raise TargetRefused(f"the host {host} does not resolve")
    return list(seen.values())


def check(url: str, *, allow_private: bool) -> Target:
    """The URL as a target to connect to, every address of its host checked (all must be
    public: an attacker controls which one a client would pick)."""
    scheme, host, port, path = parse(url, allow_private=allow_private)
    addresses = resolve(host, port)
    if not allow_private:
        for address in addresses:
            why = refusal(address)
            if why is not None:
                raise TargetRefused(f"the host {host} resolves to a {why} address ({address})")
    return Target(scheme, host, port, path, tuple(str(a) for a in addresses))


def check_for_registration(url: str, *, allow_private: bool) -> Target:
    """``check`` for an endpoint being registered: a refusal is the merchant's 422."""
    try:
        return check(url, allow_private=allow_private)
    except TargetRefused as exc:
        raise errors.ValidationFailed(
            f"url is not a target webhooks may reach: {exc}", errors=[errors.FieldError("url", str(exc))]
        ) from None


def _connect(addresses: tuple[str, ...], port: int, timeout: float | None) -> socket.socket:
    """A socket to the first checked address that answers (never a fresh lookup)."""
    error: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            error = exc
    raise error or OSError("no address to connect to")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.addresses = target.addresses

    def connect(self) -> None:
        self.sock = _connect(self.addresses, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to the checked address, the certificate verified against the URL's host name."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self.addresses = target.addresses

    def connect(self) -> None:
        sock = _connect(self.addresses, self.port, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def connection(target: Target, timeout: float) -> http.client.HTTPConnection:
    """An HTTP(S) connection to the target's checked address (nothing is sent yet)."""
    if target.scheme == "https":
        return _PinnedHTTPSConnection(target, timeout)
    return _PinnedHTTPConnection(target, timeout)
