-- No account enumeration (issue 18): a self-service sign-up answers the same for a taken
-- and a free address, and the address is proven by a token mailed to it before the
-- account can log in.
--
-- Every account that exists when this runs counts as verified (it could log in before;
-- nothing breaks on upgrade), and so does every account an operator or administrator
-- creates: the default is "verified now". Only self-service registration
-- (ledgerline.auth.users.register) inserts NULL, which login refuses with 403
-- email_not_verified until POST /v1/auth/verify-email.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz DEFAULT now();

-- One row per mail a registration asked for: a verification of a new account, or, for an
-- address that is already taken, a notice to its owner ("someone tried to register").
-- As with password_resets, the request records only the account and queues the row's
-- id; the notification worker mints the token, stores its SHA-256 digest here and puts
-- the token in the e-mail alone.
CREATE TABLE email_verifications (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id        uuid NOT NULL REFERENCES users (id),
  purpose        text NOT NULL CHECK (purpose IN ('verify', 'taken')),
  requested_at   timestamptz NOT NULL DEFAULT now(),
  sent_at        timestamptz,  -- when the worker mailed it (a redelivery mails again)
  -- Minted for a verification (also when a 'taken' address's account never verified).
  token_hash     bytea UNIQUE CHECK (octet_length(token_hash) = 32),
  expires_at     timestamptz,
  used_at        timestamptz,
  -- Why the worker sent nothing: verified meanwhile, suspended, or mailed moments ago.
  skipped_reason text CHECK (skipped_reason IN ('verified', 'inactive', 'recent')),
  CONSTRAINT email_verifications_minted CHECK (
    (token_hash IS NULL) = (expires_at IS NULL) AND (token_hash IS NULL OR sent_at IS NOT NULL)),
  CONSTRAINT email_verifications_used_once CHECK (used_at IS NULL OR token_hash IS NOT NULL)
);
CREATE INDEX email_verifications_user ON email_verifications (user_id, sent_at DESC);
CREATE INDEX email_verifications_expiry ON email_verifications (requested_at);
