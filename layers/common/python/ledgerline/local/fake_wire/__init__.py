"""The local fake gateway's providers, one module each (``ledgerline.local.fake_gateway``)."""
