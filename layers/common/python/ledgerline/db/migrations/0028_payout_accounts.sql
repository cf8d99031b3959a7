-- Payout accounts (issue 19, part P): the bank accounts a user has added to be paid out
-- to ("payment method added / removed" in the design's audit events). Added only after
-- the gateway's account-name enquiry resolved the number: account_name is the bank's,
-- never the client's. The account number is field-encrypted (ledgerline.crypto, bound to
-- this row and column), looked up by a keyed blind index, shown as its last four.
--
-- Removal is soft (removed_at): withdrawals keep referring to the row, and the payout
-- worker reads the number from here for a withdrawal that names it. At most one live
-- row per user, bank and number (the blind index): the partial unique index, which also
-- settles two adds racing.

CREATE TABLE payout_accounts (
  id                          uuid PRIMARY KEY,
  user_id                     uuid NOT NULL REFERENCES users (id),
  provider                    text NOT NULL CHECK (provider ~ '^[a-z][a-z0-9_]{1,39}$'),  -- resolved it, pays to it
  bank_code                   text NOT NULL CHECK (length(bank_code) BETWEEN 1 AND 20),
  account_name                text NOT NULL CHECK (length(account_name) BETWEEN 1 AND 100),
  account_number_ciphertext   bytea NOT NULL,
  account_number_blind_index  bytea NOT NULL CHECK (octet_length(account_number_blind_index) = 32),
  account_number_last4        text NOT NULL CHECK (account_number_last4 ~ '^[A-Z0-9]{1,4}$'),
  created_at                  timestamptz NOT NULL DEFAULT clock_timestamp(),
  removed_at                  timestamptz,
  CONSTRAINT payout_accounts_removed_after CHECK (removed_at IS NULL OR removed_at >= created_at)
);

CREATE UNIQUE INDEX payout_accounts_live ON payout_accounts (user_id, account_number_blind_index, bank_code)
  WHERE removed_at IS NULL;
CREATE INDEX payout_accounts_user ON payout_accounts (user_id, created_at DESC, id) WHERE removed_at IS NULL;

-- The application adds and soft-removes (ledgerline.payments.payout_accounts), never
-- deletes; key rotation re-encrypts the ciphertext (ledgerline.crypto.columns).
REVOKE UPDATE, DELETE, TRUNCATE ON payout_accounts FROM ledgerline_app;
GRANT SELECT, INSERT ON payout_accounts TO ledgerline_app;
GRANT UPDATE (removed_at, account_number_ciphertext) ON payout_accounts TO ledgerline_app;

-- A withdrawal to a payout account refers to it and holds no ciphertext of its own: the
-- number stays sealed once, bound to the payout account's row (a ciphertext is never
-- copied into a row it is not bound to). bank_code, account_name, the last four and the
-- blind index are copied (none is bound to a row), so a withdrawal reads as it did.
ALTER TABLE withdrawals ADD COLUMN payout_account_id uuid REFERENCES payout_accounts (id);
ALTER TABLE withdrawals ALTER COLUMN account_number_ciphertext DROP NOT NULL;
ALTER TABLE withdrawals ADD CONSTRAINT withdrawals_sealed_once
  CHECK ((payout_account_id IS NULL) = (account_number_ciphertext IS NOT NULL));
CREATE INDEX withdrawals_payout_account ON withdrawals (payout_account_id) WHERE payout_account_id IS NOT NULL;
