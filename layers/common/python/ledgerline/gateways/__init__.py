"""Payment gateways: one interface (``base.Gateway``), one adapter per provider."""
