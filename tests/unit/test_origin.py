"""Where a request comes from: the client's address, believed only as far as trusted proxies vouch."""

import pytest

from ledgerline.auth import origin
from ledgerline.config import parse_networks

PROXY = ("10.0.0.0/8",)


def ip(source, xff=None, *, trusted=PROXY, cloudfront=False, **headers):
    if xff is not None:
        headers["x-forwarded-for"] = xff
    return origin.client_ip(source, headers, trusted_proxies=trusted, trust_cloudfront=cloudfront)


def test_without_a_trusted_proxy_the_peer_is_the_client_whatever_it_forwards():
    assert ip("41.58.0.1", "8.8.8.8", trusted=()) == "41.58.0.1"


def test_an_untrusted_hops_header_is_ignored():
    # The peer is not one of our proxies: what it claims to forward is its own word.
    assert ip("41.58.0.1", "8.8.8.8") == "41.58.0.1"


def test_a_trusted_proxy_names_the_client_it_forwarded():
    assert ip("10.1.2.3", "41.58.0.1") == "41.58.0.1"


def test_the_walk_stops_at_the_first_hop_not_ours():
    # The client typed "1.1.1.1, 8.8.8.8"; our proxy appended the address it saw.
    assert ip("10.1.2.3", "1.1.1.1, 8.8.8.8, 41.58.0.1") == "41.58.0.1"
    # Two of our proxies in a row are both skipped.
    assert ip("10.1.2.3", "1.1.1.1, 41.58.0.1, 10.9.9.9") == "41.58.0.1"


def test_a_garbled_hop_leaves_the_last_address_a_trusted_proxy_vouched_for():
    assert ip("10.1.2.3", "41.58.0.1, <script>") == "10.1.2.3"
    assert ip("10.1.2.3", "") == "10.1.2.3"
    assert ip("10.1.2.3") == "10.1.2.3"


def test_only_the_nearest_hops_are_read():
    chain = ", ".join(["8.8.8.8"] + ["10.0.0.1"] * (origin.MAX_HOPS + 5))
    assert ip("10.1.2.3", chain) == "10.0.0.1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("41.58.0.1:4431", "41.58.0.1"),
        ("[2001:4860:4860::8888]:443", "2001:4860:4860::8888"),
        ("2001:4860:4860::8888", "2001:4860:4860::8888"),
        ("::ffff:41.58.0.1", "41.58.0.1"),
        (" 41.58.0.1 ", "41.58.0.1"),
    ],
)
def test_hops_are_read_in_the_forms_proxies_write(text, expected):
    assert ip("10.1.2.3", text) == expected


def test_ipv6_proxies_are_matched_by_their_own_family():
    assert ip("fd00::5", "41.58.0.1", trusted=("fd00::/8",)) == "41.58.0.1"
    assert ip("10.1.2.3", "41.58.0.1", trusted=("fd00::/8",)) == "10.1.2.3"


def test_a_peer_that_is_not_an_address_is_no_address():
    assert ip("test-invoke-source-ip", "41.58.0.1") is None
    assert ip(None) is None


EDGE = ("130.176.0.0/16",)  # one of CloudFront's origin-facing ranges, as a deployer lists them


def test_cloudfronts_viewer_address_is_believed_only_when_cloudfront_is_in_front():
    headers = {"cloudfront-viewer-address": "41.58.0.1:51234"}
    assert ip("130.176.1.1", trusted=EDGE, **headers) == "130.176.1.1"
    assert ip("130.176.1.1", trusted=EDGE, cloudfront=True, **headers) == "41.58.0.1"
    assert ip("130.176.1.1", trusted=EDGE, cloudfront=True, **{"cloudfront-viewer-address": "junk"}) == "130.176.1.1"


def test_a_client_calling_api_gateway_directly_cannot_pose_as_cloudfront():
    # API Gateway's own endpoint stays reachable: CloudFront's headers from a peer that is
    # not a trusted proxy are the client's own words, for its address and its country.
    headers = {"cloudfront-viewer-address": "81.2.69.160:443", "cloudfront-viewer-country": "GB"}
    assert ip("203.0.113.9", trusted=(), cloudfront=True, **headers) == "203.0.113.9"
    assert ip("203.0.113.9", trusted=EDGE, cloudfront=True, **headers) == "203.0.113.9"
    assert not origin.via_cloudfront("203.0.113.9", trusted_proxies=EDGE, trust_cloudfront=True)
    assert not origin.via_cloudfront("130.176.1.1", trusted_proxies=EDGE, trust_cloudfront=False)
    assert origin.via_cloudfront("130.176.1.1", trusted_proxies=EDGE, trust_cloudfront=True)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("10.0.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("fe80::1", False),
        ("203.0.113.9", False),  # documentation space
        ("224.0.0.1", False),
        ("not an address", False),
        (None, False),
    ],
)
def test_only_global_unicast_addresses_are_public(address, public):
    assert origin.is_public(address) is public


def test_trusted_proxies_parse_at_start_and_a_bad_one_is_refused():
    assert parse_networks(" 10.0.0.0/8, 192.0.2.7,fd00::/8 ") == ("10.0.0.0/8", "192.0.2.7/32", "fd00::/8")
    assert parse_networks("") == ()
    with pytest.raises(ValueError, match="trusted proxy"):
        parse_networks("10.0.0.0/8, example.com")
