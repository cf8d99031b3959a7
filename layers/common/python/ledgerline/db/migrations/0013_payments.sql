-- Payments (issue 14): top-ups through a payment gateway, and the gateway webhook events
-- that confirm them.
--
-- A top-up is a pending payment until its gateway confirms it: the wallet is credited
-- only by payment_confirm (routines/), from the gateway-webhooks consumer, in one
-- transaction with the payment's new status, its audit row, the webhook event's dedupe
-- row and the user's notification. The application role reads these tables and writes
-- them only through the SECURITY DEFINER functions (money_op 'topup', payment_confirm,
-- payment_resolve), except the checkout a gateway handed out for a pending payment.

CREATE TABLE payments (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Ours, sent to the gateway as its reference (Paystack allows alphanumerics, - . =);
  -- the ledger posting's reference is '<provider>:<reference>' (transactions.reference).
  reference       text NOT NULL UNIQUE CHECK (reference ~ '^[A-Za-z0-9.=-]{8,100}$'),
  provider        text NOT NULL CHECK (provider IN ('paystack', 'stripe', 'flutterwave')),
  owner_id        uuid NOT NULL REFERENCES users (id),
  account_id      uuid NOT NULL REFERENCES accounts (id),
  amount          numeric(19, 4) NOT NULL CHECK (amount > 0),
  currency        text NOT NULL REFERENCES currencies (code),
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed', 'flagged')),
  provider_id     text CHECK (length(provider_id) <= 200),  -- the gateway's own id, once known
  checkout        jsonb CHECK (jsonb_typeof(checkout) = 'object'),
  transaction_id  uuid REFERENCES transactions (id),  -- the credit, once succeeded
  -- Why it is flagged or failed, and what each side said (the webhook, the re-query).
  reason          text CHECK (length(reason) <= 500),
  review          jsonb,
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT payments_credited_once CHECK ((status = 'succeeded') = (transaction_id IS NOT NULL))
);

CREATE INDEX payments_owner ON payments (owner_id, created_at DESC);
CREATE INDEX payments_flagged ON payments (created_at) WHERE status = 'flagged';

REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON payments FROM ledgerline_app;
GRANT SELECT ON payments TO ledgerline_app;
-- The checkout is not money: the top-up handler stores what the gateway handed out.
GRANT UPDATE (provider_id, checkout) ON payments TO ledgerline_app;

-- Every gateway webhook event acted on, once: (provider, event id) is the dedupe key, so
-- a redelivered or replayed event finds its row and does nothing. Written in the same
-- transaction as what the event caused.
CREATE TABLE payment_webhook_events (
  provider    text NOT NULL CHECK (provider IN ('paystack', 'stripe', 'flutterwave')),
  event_id    text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 200),
  type        text NOT NULL CHECK (length(type) <= 200),
  reference   text CHECK (length(reference) <= 200),
  payment_id  uuid REFERENCES payments (id),
  outcome     text NOT NULL CHECK (outcome ~ '^[a-z_]{1,40}$'),
  received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (provider, event_id)
);

CREATE INDEX payment_webhook_events_payment ON payment_webhook_events (payment_id) WHERE payment_id IS NOT NULL;

REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON payment_webhook_events FROM ledgerline_app;
GRANT SELECT ON payment_webhook_events TO ledgerline_app;
