-- Identity and access: sessions (refresh-token families), revoked access tokens, 2FA,
-- password resets, API keys, login throttling and the shared rate-limit store.
--
-- Secrets are never stored: refresh tokens, reset tokens, API keys and recovery codes
-- are kept as SHA-256 digests of high-entropy random values (a digest of 256 random bits
-- cannot be brute-forced, so a slow KDF would only cost latency).

-- Phone numbers are sensitive (DESIGN.md 'Secrets and keys'): only an envelope-encrypted
-- value and a keyed blind index are stored, never the number; the last four digits are
-- kept for display ("****6789").
ALTER TABLE users
  ADD COLUMN phone_ciphertext bytea,
  ADD COLUMN phone_blind_index bytea,
  ADD COLUMN phone_last4 text CHECK (phone_last4 ~ '^[0-9]{1,4}$');

-- A session is one login on one device: the family of refresh tokens that descend from
-- it. Revoking the session revokes every refresh token of the family and every access
-- token that names it (claim ``sid``).
CREATE TABLE sessions (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id        uuid NOT NULL REFERENCES users (id),
  amr            text[] NOT NULL DEFAULT '{pwd}',  -- how the login was proven (RFC 8176)
  scope          text CHECK (scope IN ('otp_enrolment')),  -- NULL: full access
  device         text,
  ip             inet,
  country        text,
  city           text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  last_seen_at   timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz NOT NULL,
  revoked_at     timestamptz,
  revoked_reason text,
  CONSTRAINT sessions_revocation_explained CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);
CREATE INDEX sessions_user ON sessions (user_id, created_at DESC, id);

CREATE TABLE refresh_tokens (
  token_hash bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
  session_id uuid NOT NULL REFERENCES sessions (id),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  -- Set when the token was exchanged for the next one; presenting it again is reuse.
  rotated_at timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Access tokens revoked before their expiry (logout). Rows past expires_at can go: the
-- token is refused by its exp anyway.
CREATE TABLE revoked_tokens (
  jti        uuid PRIMARY KEY,
  user_id    uuid NOT NULL REFERENCES users (id),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz NOT NULL DEFAULT now(),
  reason     text NOT NULL
);
CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);

-- TOTP (RFC 6238). ``secret`` is the field-encrypted secret when ``ledgerline.crypto`` is
-- available (``secret_encrypted``), else the raw secret (see ledgerline/auth/otp.py).
-- ``last_step`` refuses a second use of the same code.
CREATE TABLE otp_credentials (
  user_id          uuid PRIMARY KEY REFERENCES users (id),
  secret           bytea NOT NULL,
  secret_encrypted boolean NOT NULL,
  confirmed_at     timestamptz,
  last_step        bigint,
  created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE recovery_codes (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id    uuid NOT NULL REFERENCES users (id),
  code_hash  bytea NOT NULL CHECK (octet_length(code_hash) = 32),
  created_at timestamptz NOT NULL DEFAULT now(),
  used_at    timestamptz,
  UNIQUE (user_id, code_hash)
);

CREATE TABLE password_reset_tokens (
  token_hash bytea PRIMARY KEY CHECK (octet_length(token_hash) = 32),
  user_id    uuid NOT NULL REFERENCES users (id),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  used_at    timestamptz
);
CREATE INDEX password_reset_tokens_user ON password_reset_tokens (user_id);

-- Server-to-server credentials of merchants. The secret is shown once; ``prefix`` (not
-- secret) identifies the key in lists and logs.
CREATE TABLE api_keys (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id      uuid NOT NULL REFERENCES users (id),
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  prefix       text NOT NULL UNIQUE,
  secret_hash  bytea NOT NULL UNIQUE CHECK (octet_length(secret_hash) = 32),
  scopes       text[] NOT NULL CHECK (cardinality(scopes) > 0),
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at   timestamptz
);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at DESC, id);

-- Consecutive password failures per login name (SHA-256 of the normalised email), kept
-- for unknown emails too, so that throttling and lockout do not reveal which accounts
-- exist.
CREATE TABLE login_throttle (
  subject        bytea PRIMARY KEY CHECK (octet_length(subject) = 32),
  failures       integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
  last_failed_at timestamptz,
  locked_until   timestamptz
);

-- The rate-limit store shared by every function instance: one row per (limit, subject),
-- a fixed window counted by one atomic upsert. UNLOGGED: counters are worth no WAL flush
-- and a crash only forgives the current window.
CREATE UNLOGGED TABLE rate_limit_buckets (
  key          text PRIMARY KEY,
  window_start timestamptz NOT NULL,
  hits         integer NOT NULL
) WITH (fillfactor = 70);
