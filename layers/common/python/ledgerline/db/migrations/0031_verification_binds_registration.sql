-- A verification mail proves the address for the registration that asked for it, with
-- the password (and name) that registration chose. Until now the account kept whatever
-- the first registration of the address set: a stranger could register the address first
-- with a password of their own, and the owner's later registration, once verified, would
-- be an account the stranger could log into (pre-registration takeover). Now each
-- verification row carries its registration's password hash and name, verify-email sets
-- them on the still unverified account, and the row forgets the hash once used.
ALTER TABLE email_verifications
  ADD COLUMN password_hash text CHECK (length(password_hash) BETWEEN 1 AND 500),
  ADD COLUMN full_name text CHECK (length(full_name) BETWEEN 1 AND 200);
