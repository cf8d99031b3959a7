"""The offline geo lookup: one interface, the shipped country data or a deployer's .mmdb."""

import subprocess
import sys

import pytest

from ledgerline import config, geo
from ledgerline.geo import backends
from ledgerline.geo.place import Place

# Google's public resolver: the registries assign 8.8.0.0/16 to the US; asserted against
# the data itself below so a data refresh that moved it would say so rather than pass.
GOOGLE_DNS = "8.8.8.8"


@pytest.fixture
def settings_env(monkeypatch):
    """Change settings for one test; the cached settings and backend are forgotten around it."""

    def apply(**env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        config.settings.cache_clear()
        backends.reset()

    yield apply
    monkeypatch.undo()
    config.settings.cache_clear()
    backends.reset()


def test_a_public_address_gets_its_country_from_the_shipped_data():
    from iptocc import country_code

    assert country_code(GOOGLE_DNS) == "US"
    assert geo.lookup(GOOGLE_DNS) == Place("US", None)
    assert geo.lookup("2001:4860:4860::8888").country == country_code("2001:4860:4860::8888") == "US"


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "::1", "10.0.0.8", "172.16.5.4", "192.168.0.1", "169.254.169.254", "fe80::1", "fc00::1",
     "0.0.0.0",  # noqa: S104 - an address looked up, not bound
     "255.255.255.255", "224.0.0.251", "203.0.113.7", "", "not-an-ip", "1.2.3.4.5", None],
)  # fmt: skip
def test_private_loopback_link_local_and_malformed_addresses_are_unknown(address):
    assert geo.lookup(address) == geo.UNKNOWN
    assert not geo.lookup(address).known


def test_a_backend_that_fails_makes_the_place_unknown_not_the_request(monkeypatch):
    class Broken:
        name = "broken"

        def lookup(self, ip):
            raise RuntimeError("corrupt database")

    monkeypatch.setattr(backends, "_current", Broken())
    assert geo.lookup(GOOGLE_DNS) == geo.UNKNOWN


def test_cloudfront_headers_count_only_when_cloudfront_is_in_front():
    headers = {"cloudfront-viewer-country": "NG", "cloudfront-viewer-city": "Lagos"}

    assert geo.place_of(GOOGLE_DNS, headers, trust_cloudfront=False) == Place("US", None)
    assert geo.place_of(GOOGLE_DNS, headers, trust_cloudfront=True) == Place("NG", "Lagos")
    assert str(geo.place_of(GOOGLE_DNS, headers, trust_cloudfront=True)) == "Lagos, NG"


@pytest.mark.parametrize(
    ("country", "city", "expected"),
    [
        ("NG", "Lagos", Place("NG", "Lagos")),
        ("ng", "Lagos", geo.UNKNOWN),
        ("<b>", "Lagos", geo.UNKNOWN),
        ("EU", None, geo.UNKNOWN),  # a registry's region, not a country
        ("NG", "<script>x</script>", Place("NG", None)),
        ("NG", "Lagos\n", Place("NG", None)),
        ("NG", "L" * 300, Place("NG", "L" * 100)),
        (None, "Lagos", geo.UNKNOWN),
    ],
)
def test_a_place_from_untrusted_text_is_checked(country, city, expected):
    assert Place.checked(country, city) == expected


def test_a_deployers_mmdb_gives_country_and_city(tmp_path, settings_env):
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City")
    writer.insert_network(IPSet(["41.58.0.0/16"]), {"country": {"iso_code": "NG"}, "city": {"names": {"en": "Lagos"}}})
    writer.insert_network(IPSet(["8.8.8.0/24"]), {"registered_country": {"iso_code": "US"}})
    path = tmp_path / "city.mmdb"
    writer.to_db_file(str(path))
    settings_env(LEDGERLINE_GEOIP_MMDB=str(path))

    assert geo.lookup("41.58.3.4") == Place("NG", "Lagos")
    assert geo.lookup("8.8.8.8") == Place("US", None)
    assert geo.lookup("1.1.1.1") == geo.UNKNOWN  # not in this file
    assert geo.lookup("127.0.0.1") == geo.UNKNOWN
    assert backends.current().name == "mmdb"


def test_an_unreadable_mmdb_falls_back_to_the_shipped_data(tmp_path, settings_env):
    bad = tmp_path / "broken.mmdb"
    bad.write_bytes(b"not a maxmind database")
    settings_env(LEDGERLINE_GEOIP_MMDB=str(bad))

    assert geo.lookup(GOOGLE_DNS) == Place("US", None)
    assert backends.current().name == "iptocc"


def _modules_after_importing(module: str) -> set[str]:
    code = f"import sys, importlib; importlib.import_module({module!r}); print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize(
    "module", ["ledgerline.http", "functions.ledger.transfers_create", "functions.auth.login", "ledgerline.geo"]
)
def test_no_route_loads_the_lookups_data_until_it_places_a_request(module):
    loaded = _modules_after_importing(module)

    assert not {"iptocc", "maxminddb"} & loaded
    if module != "ledgerline.geo":
        assert "ledgerline.geo" not in loaded
