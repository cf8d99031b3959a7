"""Merchant webhooks: endpoints merchants register, the events they subscribe to, and
signed deliveries through the outbox (``merchant-webhooks`` queue) with a delivery log.

- ``events.emit``: a merchant event, in the caller's transaction (one outbox row per
  subscribed endpoint);
- ``endpoints``: register, list, delete an endpoint; its delivery log;
- ``delivery.attempt``: one signed POST of one delivery, and what to do next;
- ``signing``: the ``t=…,v1=…`` scheme (Stripe's), ``targets``: the SSRF guard.
"""
