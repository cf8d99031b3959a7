"""Payment gateways: one interface (``base.Gateway``), one adapter per provider.

- ``base``: the interface and its values, in the ledger's terms (Decimal major units, our
  statuses, ``GatewayUnavailable`` / ``GatewayRefused`` / ``SignatureInvalid``);
- ``registry.gateway(provider)``: the adapter, keys from the ``ledgerline/gateways`` secret,
  base URL, timeout and retries from the settings (locally: the fake gateway);
- ``paystack``, ``stripe``, ``flutterwave``: each provider's wire format and webhooks;
- ``http``: the one HTTP client (timeouts, bounded retries, money never a float);
- ``signatures``: every webhook signature, verified by the adapters and made by the fake
  gateway (``ledgerline.local.fake_gateway``) with the same code.
"""
