"""Deploy-time knobs of where a request comes from: trusted proxies and CloudFront reach
every function's environment only when the deployer names them."""

import pytest
from aws_cdk import App

from infra.app import common_environment
from infra.settings import InfraSettings
from ledgerline import config


def settings_from(**context) -> InfraSettings:
    return InfraSettings.from_context(App(context=context).node)


def test_by_default_no_proxy_and_no_cloudfront_is_believed():
    env = common_environment(settings_from())

    assert "LEDGERLINE_TRUSTED_PROXIES" not in env and "LEDGERLINE_TRUST_CLOUDFRONT" not in env


def test_named_proxies_and_cloudfront_reach_the_functions_as_the_library_reads_them(monkeypatch):
    env = common_environment(settings_from(trustedProxies="10.0.0.0/8, 192.0.2.7", trustCloudFront="true"))

    assert env["LEDGERLINE_TRUSTED_PROXIES"] == "10.0.0.0/8,192.0.2.7"
    assert env["LEDGERLINE_TRUST_CLOUDFRONT"] == "true"
    for name in ("LEDGERLINE_TRUSTED_PROXIES", "LEDGERLINE_TRUST_CLOUDFRONT"):
        monkeypatch.setenv(name, env[name])
    config.settings.cache_clear()
    try:
        assert config.settings().trusted_proxies == ("10.0.0.0/8", "192.0.2.7/32")
        assert config.settings().trust_cloudfront is True
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()


def test_a_malformed_proxy_fails_the_synth_not_a_login():
    with pytest.raises(ValueError, match="trusted proxy"):
        settings_from(trustedProxies="10.0.0.0/8,proxy.example.com")


def test_cloudfront_without_the_proxies_it_comes_through_is_refused_at_synth():
    with pytest.raises(ValueError, match="trustCloudFront needs trustedProxies"):
        settings_from(trustCloudFront="true")
