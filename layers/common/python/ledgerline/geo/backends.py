"""The lookup's backends, chosen once per process from the settings.

* ``MmdbBackend``: a MaxMind-format database (GeoLite2/GeoIP2 Country or City, DB-IP's
  lite files) that a deployer provides at ``LEDGERLINE_GEOIP_MMDB``; country and city.
* ``IptoccBackend``: the default. The ``iptocc`` wheel (MIT or Apache-2.0, about 600 KB,
  refreshed from the five Regional Internet Registries' delegation files) ships its data
  inside; a lookup is an in-memory search, no file and no network. Country only: the
  registries know to whom a block is assigned, not where in the country it is used.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Protocol

from ledgerline.geo.place import UNKNOWN, Place

logger = logging.getLogger(__name__)


class Backend(Protocol):
    name: str

    def lookup(self, ip: str) -> Place: ...


class IptoccBackend:
    name = "iptocc"

    def __init__(self) -> None:
        from iptocc import country_code  # the data loads with the module, here, once

        self._country_code = country_code

    def lookup(self, ip: str) -> Place:
        return Place.checked(self._country_code(ip))


class MmdbBackend:
    name = "mmdb"

    def __init__(self, path: Path) -> None:
        import maxminddb

        # MODE_AUTO: the C extension with a memory map when present, else pure Python.
        self._reader = maxminddb.open_database(str(path))

    def lookup(self, ip: str) -> Place:
        record = self._reader.get(ip)
        if not isinstance(record, dict):
            return UNKNOWN
        country = _get(record, "country", "iso_code") or _get(record, "registered_country", "iso_code")
        city = _get(record, "city", "names", "en")
        return Place.checked(country, city)


def _get(record: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(record, dict):
            return None
        record = record.get(key)
    return record


_lock = threading.Lock()
_current: Backend | None = None


def current() -> Backend:
    """The deployment's backend, built on first use (the local gateway's threads share it)."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                _current = _build()
    return _current


def _build() -> Backend:
    from ledgerline.config import settings

    path = settings().geoip_mmdb
    if path is not None:
        try:
            return MmdbBackend(path)
        except (OSError, ValueError, RuntimeError):  # maxminddb.InvalidDatabaseError is a RuntimeError
            # A deployer's file that cannot be read must not end logins: say so once, and
            # place requests by country from the shipped data meanwhile.
            logger.exception("LEDGERLINE_GEOIP_MMDB=%s cannot be read; using the iptocc data", path)
    return IptoccBackend()


def reset() -> None:
    """Forget the backend (tests that change the settings)."""
    global _current
    with _lock:
        _current = None


def log_failure() -> None:
    # The address is not logged: it is personal data, and the failure is the backend's.
    logger.exception("geo lookup failed in backend %s", getattr(_current, "name", "?"))
