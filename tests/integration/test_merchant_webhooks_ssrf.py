"""The SSRF guard of merchant webhooks: in AWS only public addresses over https."""

from __future__ import annotations

import ipaddress

import pytest

from ledgerline.webhooks import targets

REFUSED = [
    ("https://127.0.0.1/x", "loopback"),
    ("https://10.1.2.3/x", "private"),
    ("https://172.16.0.9/x", "private"),
    ("https://192.168.1.1/x", "private"),
    ("https://169.254.169.254/latest/meta-data/", "link-local"),
    ("https://0.0.0.0/x", "unspecified"),
    ("https://224.0.0.1/x", "multicast"),
    ("https://240.0.0.1/x", "reserved"),
    ("https://100.64.0.1/x", "not-global"),
    ("https://[::1]/x", "loopback"),
    ("https://[fe80::1]/x", "link-local"),
    ("https://[fc00::1]/x", "private"),
    ("https://[ff02::1]/x", "multicast"),
    ("https://[::ffff:127.0.0.1]/x", "loopback"),
    ("https://[::ffff:a9fe:a9fe]/x", "link-local"),  # 169.254.169.254, IPv4-mapped
    ("https://[64:ff9b::a00:1]/x", "private"),  # 10.0.0.1 through NAT64
    ("https://localhost:8443/x", None),  # a name that resolves to loopback
]


@pytest.mark.parametrize(("url", "why"), REFUSED)
def test_non_public_targets_are_refused_in_aws(url, why):
    with pytest.raises(targets.TargetRefused) as refused:
        targets.check(url, allow_private=False)
    if why:
        assert f"a {why} address" in str(refused.value)
    # Locally the same target is allowed (over http too): tests deliver to 127.0.0.1.
    if "localhost" not in url:
        assert targets.check(url.replace("https://", "http://"), allow_private=True).addresses


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://93.184.216.34/x", "must start with https://"),
        ("https://user:pw@93.184.216.34/x", "credentials"),
        ("https:///x", "no host"),
        ("https://93.184.216.34/x#frag", "fragment"),
        ("https://93.184.216.34:99999/x", "not a URL"),
        ("https://93.184.216.34/a b", "whitespace"),
        ("gopher://93.184.216.34/x", "must start with"),
        ("https://" + "a" * 2050 + ".example/", "longer than"),
    ],
)
def test_malformed_or_unsafe_urls_are_refused(url, reason):
    with pytest.raises(targets.TargetRefused, match=reason):
        targets.check(url, allow_private=False)


def test_a_public_address_is_a_target_and_is_connected_to_as_checked():
    target = targets.check("https://93.184.216.34:8443/hook?a=1", allow_private=False)
    assert target == targets.Target("https", "93.184.216.34", 8443, "/hook?a=1", ("93.184.216.34",))
    conn = targets.connection(target, 1.0)
    assert (conn.host, conn.port) == ("93.184.216.34", 8443)


def test_every_resolved_address_must_be_public():
    assert targets.refusal(ipaddress.ip_address("8.8.8.8")) is None
    assert targets.refusal(ipaddress.ip_address("2001:4860:4860::8888")) is None
    assert targets.refusal(ipaddress.ip_address("::ffff:8.8.8.8")) is None
    assert targets.refusal(ipaddress.ip_address("192.0.2.1")) is not None  # documentation range


def test_registration_refuses_with_a_422_naming_the_url():
    from ledgerline import errors

    with pytest.raises(errors.ValidationFailed) as refused:
        targets.check_for_registration("https://169.254.169.254/", allow_private=False)
    assert refused.value.errors[0].field == "url"


@pytest.mark.parametrize(
    ("environment", "override", "allowed"),
    [("aws", None, False), ("local", None, True), ("test", None, True), ("aws", "true", True), ("test", "0", False)],
)
def test_private_targets_are_allowed_only_off_aws_unless_configured(monkeypatch, environment, override, allowed):
    from ledgerline import config

    monkeypatch.setenv("LEDGERLINE_ENV", environment)
    if override is None:
        monkeypatch.delenv("LEDGERLINE_ALLOW_PRIVATE_WEBHOOK_TARGETS", raising=False)
    else:
        monkeypatch.setenv("LEDGERLINE_ALLOW_PRIVATE_WEBHOOK_TARGETS", override)
    config.settings.cache_clear()
    try:
        assert config.settings().allow_private_webhook_targets is allowed
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()
