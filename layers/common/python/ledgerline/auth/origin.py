"""Where a request comes from: the client's IP address, believed only as far as it can be.

The address that reached us (API Gateway's ``sourceIp``, the local gateway's TCP peer) is
the client unless it is a proxy the deployment runs in front (``trusted_proxies``). Then,
and only then, the ``X-Forwarded-For`` hop that proxy appended is believed, and so on
leftwards while each hop is itself a trusted proxy: the first address set by a hop we do
not run is as far as anyone can vouch for (everything left of it the client could have
typed). With CloudFront configured in front, its ``CloudFront-Viewer-Address`` names the
viewer, but only on a request that reached us from a trusted proxy (list CloudFront's
origin-facing ranges there): a client calling API Gateway's own endpoint directly can send
CloudFront's headers too. Anything malformed is ignored, never an error.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from functools import cache

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_HOPS = 20  # a longer chain is not a deployment's; its far end is not read
_MAX_HEADER = 2000


def parse(text: str | None) -> Address | None:
    """An address as a hop writes one: ``203.0.113.7``, ``203.0.113.7:443``, ``2001:db8::1``
    or ``[2001:db8::1]:443``; an IPv4-mapped IPv6 address as its IPv4 form; else None."""
    if not text or not isinstance(text, str):
        return None
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@cache
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _trusted(address: Address, networks: Iterable[Network]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def client_ip(
    source_ip: str | None,
    headers: Mapping[str, str],
    *,
    trusted_proxies: tuple[str, ...] | None = None,
    trust_cloudfront: bool | None = None,
) -> str | None:
    """The client's address as text, or None when the peer's own is not an address.

    ``headers`` have lower-case names (as the Endpoint keeps them); the settings are the
    deployment's unless given."""
    if trusted_proxies is None or trust_cloudfront is None:
        from ledgerline.config import settings

        current = settings()
        trusted_proxies = current.trusted_proxies if trusted_proxies is None else trusted_proxies
        trust_cloudfront = current.trust_cloudfront if trust_cloudfront is None else trust_cloudfront
    peer = parse(source_ip)
    if peer is None:
        return None
    networks = _networks(tuple(trusted_proxies))
    if not networks or not _trusted(peer, networks):
        return str(peer)
    if trust_cloudfront:
        viewer = parse(headers.get("cloudfront-viewer-address"))
        if viewer is not None:
            return str(viewer)
    hops = (headers.get("x-forwarded-for") or "")[:_MAX_HEADER].split(",")
    current_hop = peer
    for entry in reversed(hops[-MAX_HOPS:]):
        if not _trusted(current_hop, networks):
            break
        earlier = parse(entry)
        if earlier is None:
            break  # a garbled hop: stay with the last address a trusted proxy vouched for
        current_hop = earlier
    return str(current_hop)


def via_cloudfront(
    source_ip: str | None, *, trusted_proxies: tuple[str, ...] | None = None, trust_cloudfront: bool | None = None
) -> bool:
    """Whether CloudFront's viewer headers may be believed for a request from ``source_ip``:
    CloudFront is configured in front and the request came through a trusted proxy."""
    if trusted_proxies is None or trust_cloudfront is None:
        from ledgerline.config import settings

        current = settings()
        trusted_proxies = current.trusted_proxies if trusted_proxies is None else trusted_proxies
        trust_cloudfront = current.trust_cloudfront if trust_cloudfront is None else trust_cloudfront
    peer = parse(source_ip)
    return bool(trust_cloudfront) and peer is not None and _trusted(peer, _networks(tuple(trusted_proxies)))


def is_public(address: str | None) -> bool:
    """A globally routable unicast address (not private, loopback, link-local, reserved,
    multicast or documentation space): the only kind a place can be found for."""
    parsed = parse(address)
    return parsed is not None and parsed.is_global and not parsed.is_multicast
