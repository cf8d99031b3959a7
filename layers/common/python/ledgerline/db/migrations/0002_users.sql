-- Principals. The identity module adds credentials, sessions and keys around this table.

CREATE TABLE users (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email         text NOT NULL,
  full_name     text NOT NULL,
  role          text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'merchant', 'admin', 'auditor', 'system')),
  status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  password_hash text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT users_email_normalised CHECK (email = lower(btrim(email)))
);

CREATE UNIQUE INDEX users_email ON users (email);
REVOKE DELETE, TRUNCATE ON users FROM ledgerline_app;  -- users are suspended, never deleted
