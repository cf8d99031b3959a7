-- Where a user logs in from (issue 18, part A).
--
-- known_countries: every country a user has completed a login from. A login from a
-- country not in the set needs a second factor before tokens are issued
-- (ledgerline.auth.new_country); the first login of a user with no country yet records
-- it without one (there is nothing to compare it with). Administrators list and clear
-- them (a cleared country asks for the second factor again next time).
CREATE TABLE known_countries (
  user_id       uuid NOT NULL REFERENCES users (id),
  country       text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
  first_seen_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, country)
);
REVOKE TRUNCATE ON known_countries FROM ledgerline_app;

-- login_challenges: the one-time code e-mailed to a user without TOTP who logs in from a
-- new country. The login records only the challenge and queues its id; the notification
-- worker mints the code, stores its SHA-256 digest here and puts the code in the e-mail
-- alone (no outbox row, message or log line holds it). A challenge is bound to the user
-- and the country it was issued for, lives 10 minutes, is spent once, and dies after 5
-- wrong codes.
CREATE TABLE login_challenges (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id      uuid NOT NULL REFERENCES users (id),
  country      text NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
  requested_at timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  code_hash    bytea CHECK (octet_length(code_hash) = 32),
  minted_at    timestamptz,
  attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  used_at      timestamptz,
  CONSTRAINT login_challenges_minted CHECK ((code_hash IS NULL) = (minted_at IS NULL)),
  CONSTRAINT login_challenges_used_once CHECK (used_at IS NULL OR code_hash IS NOT NULL)
);
CREATE INDEX login_challenges_user ON login_challenges (user_id, country, requested_at DESC);
CREATE INDEX login_challenges_expiry ON login_challenges (expires_at);
REVOKE TRUNCATE ON login_challenges FROM ledgerline_app;
