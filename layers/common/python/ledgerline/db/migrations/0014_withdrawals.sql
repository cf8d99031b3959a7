-- Withdrawals (issue 14): money leaving a wallet for a bank account through a gateway.
--
-- requested ──approve──► approved ──payout webhook / worker──► paid | failed
--     └──────reject─────► rejected
--
-- A request holds the amount on the wallet (a hold: at most 30 days). Approval does not
-- wait on the hold until the payout answers: it captures the hold into the currency's
-- payout_clearing account (capture_transaction_id). A paid payout moves it on from
-- clearing to external_funding (settlement_transaction_id): the money left the ledger.
-- A failed payout reverses the capture (reversal_transaction_id): back to the wallet.
--
-- The destination's account number is field-encrypted (ledgerline.crypto, bound to this
-- row and column), looked up by a keyed blind index, shown as its last four digits.
-- The state changes only through the SECURITY DEFINER routines withdrawal_*.sql, each in
-- the same transaction as its money, its audit row and its outbox row.

CREATE TABLE withdrawals (
  id                          uuid PRIMARY KEY,
  user_id                     uuid NOT NULL REFERENCES users (id),
  account_id                  uuid NOT NULL REFERENCES accounts (id),
  currency                    text NOT NULL REFERENCES currencies (code),
  amount                      numeric(19,4) NOT NULL CHECK (amount > 0),
  status                      text NOT NULL DEFAULT 'requested'
                                CHECK (status IN ('requested', 'approved', 'paid', 'failed', 'rejected')),
  hold_id                     uuid NOT NULL UNIQUE REFERENCES holds (id),
  provider                    text NOT NULL CHECK (provider ~ '^[a-z][a-z0-9_]{1,39}$'),
  bank_code                   text NOT NULL CHECK (length(bank_code) BETWEEN 1 AND 20),
  account_name                text NOT NULL CHECK (length(account_name) BETWEEN 1 AND 100),
  account_number_ciphertext   bytea NOT NULL,
  account_number_blind_index  bytea NOT NULL CHECK (octet_length(account_number_blind_index) = 32),
  account_number_last4        text NOT NULL CHECK (account_number_last4 ~ '^[A-Z0-9]{1,4}$'),
  step_up                     text NOT NULL CHECK (step_up IN ('none', 'otp')),
  capture_transaction_id      uuid UNIQUE REFERENCES transactions (id),
  settlement_transaction_id   uuid UNIQUE REFERENCES transactions (id),
  reversal_transaction_id     uuid UNIQUE REFERENCES transactions (id),
  payout_id                   text CHECK (length(payout_id) BETWEEN 1 AND 200),  -- the provider's
  reason                      text CHECK (length(reason) <= 500),  -- why rejected, or why the payout failed
  decided_by                  uuid REFERENCES users (id),  -- the administrator who approved or rejected
  created_at                  timestamptz NOT NULL DEFAULT clock_timestamp(),
  decided_at                  timestamptz,
  submitted_at                timestamptz,  -- the gateway accepted the payout request
  settled_at                  timestamptz,  -- paid or failed
  CONSTRAINT withdrawals_decided CHECK ((status = 'requested') = (decided_at IS NULL)),
  CONSTRAINT withdrawals_captured CHECK ((status IN ('approved', 'paid', 'failed')) = (capture_transaction_id IS NOT NULL)),
  CONSTRAINT withdrawals_paid CHECK ((status = 'paid') = (settlement_transaction_id IS NOT NULL)),
  CONSTRAINT withdrawals_failed CHECK ((status = 'failed') = (reversal_transaction_id IS NOT NULL)),
  CONSTRAINT withdrawals_settled CHECK ((status IN ('paid', 'failed')) = (settled_at IS NOT NULL))
);

CREATE INDEX withdrawals_user ON withdrawals (user_id, created_at DESC);
CREATE INDEX withdrawals_pending ON withdrawals (status, created_at) WHERE status IN ('requested', 'approved');
CREATE INDEX withdrawals_destination ON withdrawals (account_number_blind_index);

-- Reads only; every change goes through the withdrawal_* routines. Key rotation
-- re-encrypts the ciphertext column (ledgerline.crypto.columns).
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON withdrawals FROM ledgerline_app;
GRANT SELECT ON withdrawals TO ledgerline_app;
GRANT UPDATE (account_number_ciphertext) ON withdrawals TO ledgerline_app;
