"""A place: what the geo lookup answers, checked so that it is safe to show and store."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_COUNTRY = re.compile(r"[A-Z]{2}")
# Codes the registries use that name no country (EU: Europe, AP: Asia-Pacific, ZZ and
# XX: unknown): a login "from" one of them cannot be compared with another's.
_NOT_A_COUNTRY = frozenset({"EU", "AP", "ZZ", "XX", "T1", "A1", "A2", "O1"})
_CITY_MARKUP = frozenset("<>\"'&")
MAX_CITY = 100


@dataclass(frozen=True)
class Place:
    country: str | None = None  # ISO 3166-1 alpha-2, upper case
    city: str | None = None

    @classmethod
    def checked(cls, country: object, city: object = None) -> Place:
        """A place from untrusted text (a header, a database record): a country that is
        not two capital letters naming a country is unknown, and so is its city; a city
        with markup or control characters is dropped."""
        if not isinstance(country, str) or not _COUNTRY.fullmatch(country) or country in _NOT_A_COUNTRY:
            return UNKNOWN
        if not isinstance(city, str) or not city.strip() or not city.isprintable() or _CITY_MARKUP.intersection(city):
            return cls(country, None)
        return cls(country, city.strip()[:MAX_CITY])

    @property
    def known(self) -> bool:
        return self.country is not None

    def __str__(self) -> str:
        """``Lagos, NG``, ``NG``, or ``unknown``."""
        return ", ".join(p for p in (self.city, self.country) if p) or "unknown"


UNKNOWN = Place()


def from_cloudfront(headers: Mapping[str, str]) -> Place:
    """CloudFront-Viewer-Country/-City (lower-case names); the caller decides whether
    CloudFront is in front at all."""
    return Place.checked(headers.get("cloudfront-viewer-country"), headers.get("cloudfront-viewer-city"))
