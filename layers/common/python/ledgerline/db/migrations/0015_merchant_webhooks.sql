-- Merchant webhooks (issue 14): merchants register endpoints (URL, event types); every
-- event of theirs becomes one delivery per subscribed endpoint, sent through the outbox
-- (the outbox row carries the delivery's id only), signed with the endpoint's secret, and
-- every attempt is logged.
--
-- The outbox purge runs with the owner's rights (outbox_purge_relayed, SECURITY DEFINER):
-- the application role loses DELETE on the outbox.

-- The event types merchants may subscribe to: a foreign key, so a caller (Python or a
-- money routine) that names a type nobody can subscribe to fails loudly instead of
-- emitting into the void. ledgerline.webhooks.events.EVENT_TYPES mirrors this list.
CREATE TABLE webhook_event_types (
  name        text PRIMARY KEY CHECK (name ~ '^[a-z]+(_[a-z]+)*\.[a-z]+(_[a-z]+)*$'),
  description text NOT NULL
);
INSERT INTO webhook_event_types (name, description) VALUES
  ('payment.succeeded', 'A top-up was paid and credited'),
  ('payment.failed', 'A top-up failed at the gateway'),
  ('withdrawal.paid', 'A withdrawal was paid out'),
  ('withdrawal.failed', 'A withdrawal failed or was rejected; its hold was released'),
  ('transfer.received', 'Money arrived in one of the merchant''s wallets');

CREATE TABLE webhook_endpoints (
  id                uuid PRIMARY KEY,
  owner_id          uuid NOT NULL REFERENCES users (id),
  url               text NOT NULL CHECK (length(url) BETWEEN 8 AND 2048),
  events            text[] NOT NULL CHECK (cardinality(events) BETWEEN 1 AND 50),
  -- The signing secret, field-encrypted (ledgerline.crypto; AD names this row and column).
  secret_ciphertext bytea NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  deleted_at        timestamptz
);
CREATE INDEX webhook_endpoints_owner ON webhook_endpoints (owner_id, created_at DESC, id) WHERE deleted_at IS NULL;

-- One event, as merchants receive it (the body is built from this row at delivery).
CREATE TABLE webhook_events (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id   uuid NOT NULL REFERENCES users (id),
  type       text NOT NULL REFERENCES webhook_event_types (name),
  data       jsonb NOT NULL CHECK (jsonb_typeof(data) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- One event for one endpoint: its state across attempts.
CREATE TABLE webhook_deliveries (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints (id),
  event_id        uuid NOT NULL REFERENCES webhook_events (id),
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'dead')),
  attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (endpoint_id, event_id)
);

-- The delivery log: one row per attempt, what the merchant's server answered.
CREATE TABLE webhook_delivery_attempts (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  delivery_id uuid NOT NULL REFERENCES webhook_deliveries (id),
  attempt     integer NOT NULL CHECK (attempt >= 1),
  status_code integer CHECK (status_code BETWEEN 100 AND 599),
  duration_ms integer NOT NULL CHECK (duration_ms >= 0),
  error       text CHECK (length(error) <= 1000),
  outcome     text NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'dead')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (delivery_id, attempt)
);
CREATE INDEX webhook_delivery_attempts_log ON webhook_delivery_attempts (delivery_id);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at DESC, id);

-- New tables are the application's to change by default (the migrator's default
-- privileges); these are append-only but for the columns that record progress.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON webhook_event_types FROM ledgerline_app;
REVOKE UPDATE, DELETE, TRUNCATE ON webhook_endpoints, webhook_events, webhook_deliveries, webhook_delivery_attempts
  FROM ledgerline_app;
-- The secret column: key rotation (ledgerline.crypto.rotation) re-encrypts it as the application.
GRANT UPDATE (deleted_at, secret_ciphertext) ON webhook_endpoints TO ledgerline_app;
GRANT UPDATE (status, attempts, updated_at) ON webhook_deliveries TO ledgerline_app;

-- The purge deletes through outbox_purge_relayed (the owner's rights) only.
REVOKE DELETE ON outbox FROM ledgerline_app;
