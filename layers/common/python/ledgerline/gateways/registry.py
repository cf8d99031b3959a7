"""``gateway(provider)``: the adapter for a provider, with its keys from the gateways secret
(``ledgerline/gateways`` in Secrets Manager; locally the throwaway dev values) and its base
URL, timeout and retries from the settings (locally the fake gateway's URL)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ledgerline.aws import resources, secrets
from ledgerline.config import Settings, settings
from ledgerline.errors import NotFound
from ledgerline.gateways.base import PROVIDERS, Gateway
from ledgerline.gateways.flutterwave import Flutterwave
from ledgerline.gateways.paystack import Paystack
from ledgerline.gateways.stripe import Stripe


class UnknownProvider(NotFound):
    code = "unknown_provider"
    title = "Unknown payment provider"


def _paystack(keys: Mapping[str, Any], cfg: Settings) -> Gateway:
    return Paystack(
        secret_key=keys["paystack_secret_key"],
        base_url=cfg.gateway_urls["paystack"],
        timeout=cfg.gateway_timeout_seconds,
        retries=cfg.gateway_retries,
    )


def _stripe(keys: Mapping[str, Any], cfg: Settings) -> Gateway:
    return Stripe(
        secret_key=keys["stripe_secret_key"],
        # While a signing secret is rolled, both verify (the new one first).
        webhook_secrets=[keys["stripe_webhook_secret"], keys.get("stripe_webhook_secret_previous") or ""],
        base_url=cfg.gateway_urls["stripe"],
        timeout=cfg.gateway_timeout_seconds,
        retries=cfg.gateway_retries,
    )


def _flutterwave(keys: Mapping[str, Any], cfg: Settings) -> Gateway:
    return Flutterwave(
        secret_key=keys["flutterwave_secret_key"],
        secret_hash=keys["flutterwave_secret_hash"],
        base_url=cfg.gateway_urls["flutterwave"],
        timeout=cfg.gateway_timeout_seconds,
        retries=cfg.gateway_retries,
        webhook_schemes=cfg.flutterwave_webhook_schemes,
    )


_FACTORIES: dict[str, Callable[[Mapping[str, Any], Settings], Gateway]] = {
    "paystack": _paystack,
    "stripe": _stripe,
    "flutterwave": _flutterwave,
}
assert tuple(_FACTORIES) == PROVIDERS


def check_provider(provider: str) -> str:
    """``provider`` when it is one we speak; else ``UnknownProvider`` (404)."""
    if provider not in _FACTORIES:
        raise UnknownProvider(f"unknown payment provider {provider!r}; use one of {', '.join(PROVIDERS)}")
    return provider


def gateway(provider: str) -> Gateway:
    """The adapter for ``provider``. Keys are read through the secrets cache (a few minutes),
    so a rotated key takes effect without a redeploy."""
    factory = _FACTORIES.get(check_provider(provider))
    assert factory is not None
    return factory(secrets.get_json(resources.gateway_secret_id()), settings())
