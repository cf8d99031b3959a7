"""Where an address is: ``lookup(ip) -> Place(country, city)``, offline.

One small interface over interchangeable backends (``backends``): the MaxMind-format
database a deployer provides (``LEDGERLINE_GEOIP_MMDB``, read with ``maxminddb``: country
and city), else the registries' country data the ``iptocc`` wheel ships (country only).
CloudFront's viewer headers (``place_of``) are believed only when the deployment says a
CloudFront distribution is in front. Private, loopback, link-local, reserved and
malformed addresses are unknown; a lookup never raises.

Importing this package loads no backend: the first lookup does, so only the routes
that place a request (login, refresh) pay for it, and only once per process.
"""

from __future__ import annotations

from collections.abc import Mapping

from ledgerline.geo.place import UNKNOWN, Place, from_cloudfront

__all__ = ["UNKNOWN", "Place", "lookup", "place_of"]


def lookup(ip: str | None) -> Place:
    """The country (ISO 3166-1 alpha-2) and city of a public address; UNKNOWN otherwise."""
    from ledgerline.auth.origin import parse
    from ledgerline.geo import backends

    address = parse(ip)
    if address is None or not address.is_global or address.is_multicast:
        return UNKNOWN
    try:
        return backends.current().lookup(str(address))
    except Exception:  # a corrupt database or a backend bug: unknown, never a failed login
        backends.log_failure()
        return UNKNOWN


def place_of(ip: str | None, headers: Mapping[str, str], *, trust_cloudfront: bool = False) -> Place:
    """Where a request comes from: CloudFront's viewer headers when the request came
    through CloudFront (``ledgerline.auth.origin.via_cloudfront``) and they are
    well-formed, else ``lookup(ip)``."""
    if trust_cloudfront:
        viewer = from_cloudfront(headers)
        if viewer.country:
            return viewer
    return lookup(ip)
