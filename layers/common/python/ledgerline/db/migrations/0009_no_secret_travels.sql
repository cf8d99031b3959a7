-- Security findings (issue 11): no secret sits in the outbox, and a reset request does
-- the same work whatever the address.
--
-- Before: a reset request looked the address up, minted the token and put it in the
-- outbox row (and so in the SQS message), readable by the application role and kept
-- forever; and an existing address took measurably longer to answer than an unknown one.
-- Now: the request records only that an address asked (one row, one outbox row with the
-- request's id, one audit row, for every address). The notification worker looks the
-- address up, mints the token, stores only its digest here, and puts the token in the
-- e-mail alone. A redelivered message mints a fresh token: only the newest one works.

CREATE TABLE password_resets (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email          text NOT NULL,  -- normalised, as asked for; it may name no account
  requested_at   timestamptz NOT NULL DEFAULT now(),
  user_id        uuid REFERENCES users (id),
  token_hash     bytea UNIQUE CHECK (octet_length(token_hash) = 32),
  minted_at      timestamptz,
  expires_at     timestamptz,
  used_at        timestamptz,
  -- Why the worker sent nothing: no such account, a suspended one, or one mailed moments ago.
  skipped_reason text CHECK (skipped_reason IN ('unknown', 'inactive', 'recent')),
  CONSTRAINT password_resets_minted CHECK (
    (token_hash IS NULL) = (minted_at IS NULL) AND (token_hash IS NULL) = (expires_at IS NULL)
    AND (token_hash IS NULL OR user_id IS NOT NULL)),
  CONSTRAINT password_resets_used_once CHECK (used_at IS NULL OR token_hash IS NOT NULL)
);
CREATE INDEX password_resets_user ON password_resets (user_id, minted_at DESC) WHERE user_id IS NOT NULL;
CREATE INDEX password_resets_expiry ON password_resets (requested_at);

-- Tokens of the old scheme were also in outbox rows; both go (a link is valid 30 minutes).
DROP TABLE password_reset_tokens;
DELETE FROM outbox WHERE payload ? 'token';

-- Relayed outbox rows are purged after a while (ledgerline.outbox.purge_relayed): they
-- carry ids only, but nothing is kept forever without a reason. Pending rows, and rows
-- relayed less than a day ago (a consumer may still look one up), cannot be deleted.
CREATE FUNCTION outbox_guard_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.relayed_at IS NULL OR OLD.relayed_at > now() - interval '1 day' THEN
    RAISE EXCEPTION 'outbox row % is pending or relayed less than a day ago; it stays', OLD.id
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN OLD;
END $$;

CREATE TRIGGER outbox_guard_delete BEFORE DELETE ON outbox
  FOR EACH ROW EXECUTE FUNCTION outbox_guard_delete();

CREATE INDEX outbox_relayed ON outbox (relayed_at) WHERE relayed_at IS NOT NULL;
GRANT DELETE ON outbox TO ledgerline_app;
