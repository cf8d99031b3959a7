"""Payments through gateways: top-ups (a pending payment, then the gateway's checkout),
the webhook ingress and the gateway-webhooks consumer that credits wallets.

- ``model``: a payment as the API shows it;
- ``decide``: what a webhook and the gateway's re-query mean for a pending payment (pure);
- ``store``: the SQL (``payment_open`` through ``money_op``, ``payment_confirm``, reads);
- ``checkout``: the gateway's checkout for a new top-up, asked for after the payment exists;
- ``ingress``: verify a webhook's raw bytes and hand it to the queue;
- ``confirm``: the consumer's work for one queued webhook.
"""
