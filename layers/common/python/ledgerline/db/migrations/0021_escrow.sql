-- Escrow (issue 17): an escrow holds a buyer's money in an account of its own until the
-- buyer accepts (release to the seller, less the fee), the seller refunds, or an
-- administrator resolves a dispute. The state machine is data (escrow_transitions) and
-- the database refuses any status change it does not list (escrow_guard), so no code
-- path, however it is written, can move an escrow along an edge the design does not have.
-- Escrow rows, disputes and fee schedules are written only by the SECURITY DEFINER
-- routines (db/routines/escrow_*.sql, fee_*.sql); the application role reads them.

-- The machine: AWAITING_PAYMENT -> FUNDED -> RELEASED | REFUNDED | DISPUTED;
-- DISPUTED -> RESOLVED_RELEASED | RESOLVED_REFUNDED. Every other pair is refused.
-- action: the verb of the route that takes the edge; parties: who may take it;
-- movement: the ledger posting tied to it, in the same transaction as the status change.
CREATE TABLE escrow_transitions (
  from_status text NOT NULL,
  to_status   text NOT NULL,
  action      text NOT NULL CHECK (action IN ('fund', 'release', 'refund', 'dispute', 'resolve')),
  parties     text[] NOT NULL CHECK (parties <@ ARRAY['buyer', 'seller', 'admin']::text[] AND cardinality(parties) > 0),
  movement    text NOT NULL CHECK (movement IN ('none', 'fund', 'release', 'refund')),
  PRIMARY KEY (from_status, to_status)
);

INSERT INTO escrow_transitions (from_status, to_status, action, parties, movement) VALUES
  ('AWAITING_PAYMENT', 'FUNDED',            'fund',    ARRAY['buyer'],           'fund'),
  ('FUNDED',           'RELEASED',          'release', ARRAY['buyer'],           'release'),
  ('FUNDED',           'REFUNDED',          'refund',  ARRAY['seller'],          'refund'),
  ('FUNDED',           'DISPUTED',          'dispute', ARRAY['buyer', 'seller'], 'none'),
  ('DISPUTED',         'RESOLVED_RELEASED', 'resolve', ARRAY['admin'],           'release'),
  ('DISPUTED',         'RESOLVED_REFUNDED', 'resolve', ARRAY['admin'],           'refund');

CREATE TABLE escrows (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  buyer_id    uuid NOT NULL REFERENCES users (id),
  seller_id   uuid NOT NULL REFERENCES users (id),
  currency    text NOT NULL REFERENCES currencies (code),
  amount      numeric(19,4) NOT NULL CHECK (amount > 0),
  description text NOT NULL CHECK (length(description) BETWEEN 1 AND 500),
  status      text NOT NULL DEFAULT 'AWAITING_PAYMENT' CHECK (status IN (
                'AWAITING_PAYMENT', 'FUNDED', 'RELEASED', 'REFUNDED', 'DISPUTED',
                'RESOLVED_RELEASED', 'RESOLVED_REFUNDED')),
  -- The escrow's own ledger account: kind 'escrow', no owner, so no user can debit it
  -- through /v1/transfers or /v1/holds; only this escrow's transitions move its money.
  account_id  uuid NOT NULL UNIQUE,
  invoice_id  uuid UNIQUE,  -- the invoice paid into it, if any (its foreign key comes with invoices)
  funded_from uuid REFERENCES accounts (id),  -- the buyer's wallet that funded it: a refund goes back there
  fee         numeric(19,4) CHECK (fee >= 0),  -- charged at release (fee_quote at that moment)
  fund_transaction_id   uuid UNIQUE REFERENCES transactions (id),
  settle_transaction_id uuid UNIQUE REFERENCES transactions (id),  -- the release or the refund
  created_by  uuid NOT NULL REFERENCES users (id),
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  funded_at   timestamptz,
  settled_at  timestamptz,  -- reached a terminal status
  updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT escrows_two_parties CHECK (buyer_id <> seller_id),
  CONSTRAINT escrows_account_currency FOREIGN KEY (account_id, currency) REFERENCES accounts (id, currency),
  CONSTRAINT escrows_funded CHECK ((status = 'AWAITING_PAYMENT') = (funded_at IS NULL)
                                   AND (funded_at IS NULL) = (fund_transaction_id IS NULL)
                                   AND (funded_at IS NULL) = (funded_from IS NULL)),
  CONSTRAINT escrows_settled CHECK (
    (status IN ('RELEASED', 'REFUNDED', 'RESOLVED_RELEASED', 'RESOLVED_REFUNDED')) = (settled_at IS NOT NULL)
    AND (settled_at IS NULL) = (settle_transaction_id IS NULL)),
  CONSTRAINT escrows_fee CHECK ((fee IS NOT NULL) = (status IN ('RELEASED', 'RESOLVED_RELEASED')) AND fee <= amount)
);

CREATE INDEX escrows_buyer ON escrows (buyer_id, created_at, id);
CREATE INDEX escrows_seller ON escrows (seller_id, created_at, id);
CREATE INDEX escrows_open ON escrows (status) WHERE status IN ('AWAITING_PAYMENT', 'FUNDED', 'DISPUTED');

-- A dispute: at most one per escrow (FUNDED -> DISPUTED is taken once).
CREATE TABLE disputes (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  escrow_id         uuid NOT NULL UNIQUE REFERENCES escrows (id),
  raised_by         uuid NOT NULL REFERENCES users (id),
  reason            text NOT NULL CHECK (length(reason) BETWEEN 3 AND 2000),
  status            text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
  outcome           text CHECK (outcome IN ('release', 'refund')),
  resolved_by       uuid REFERENCES users (id),
  resolution_reason text CHECK (length(resolution_reason) BETWEEN 3 AND 2000),
  raised_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  resolved_at       timestamptz,
  CONSTRAINT disputes_resolved CHECK (
    (status = 'resolved') = (outcome IS NOT NULL)
    AND (outcome IS NULL) = (resolved_at IS NULL)
    AND (outcome IS NULL) = (resolved_by IS NULL)
    AND (outcome IS NULL) = (resolution_reason IS NULL))
);

-- Evidence: text, or a document uploaded straight to the private evidence bucket with a
-- presigned POST that fixes its key, type, size and content hash. uploaded_at is set once
-- the object is confirmed to be there with that hash.
CREATE TABLE dispute_evidence (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  dispute_id    uuid NOT NULL REFERENCES disputes (id),
  submitted_by  uuid NOT NULL REFERENCES users (id),
  body          text CHECK (length(body) BETWEEN 1 AND 10000),
  filename      text CHECK (length(filename) BETWEEN 1 AND 200),
  content_type  text CHECK (length(content_type) BETWEEN 3 AND 100),
  size_bytes    bigint CHECK (size_bytes > 0),
  sha256        text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  object_key    text UNIQUE CHECK (length(object_key) BETWEEN 1 AND 1024),
  created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  uploaded_at   timestamptz,
  CONSTRAINT dispute_evidence_something CHECK (body IS NOT NULL OR object_key IS NOT NULL),
  CONSTRAINT dispute_evidence_document CHECK (
    (object_key IS NULL) = (filename IS NULL) AND (object_key IS NULL) = (content_type IS NULL)
    AND (object_key IS NULL) = (size_bytes IS NULL) AND (object_key IS NULL) = (sha256 IS NULL)),
  CONSTRAINT dispute_evidence_uploaded CHECK (uploaded_at IS NULL OR object_key IS NOT NULL)
);

CREATE INDEX dispute_evidence_dispute ON dispute_evidence (dispute_id, created_at);

-- Fees: one schedule per currency and transaction kind (escrow_release, ...). The fee of
-- an amount is percent% of it plus fixed, bounded by minimum and maximum, never more
-- than the amount, rounded half-up to the currency's minor unit (fee_quote, and its
-- Python mirror ledgerline.fees): the rule is stated there once.
CREATE TABLE fee_schedules (
  currency         text NOT NULL REFERENCES currencies (code),
  transaction_kind text NOT NULL CHECK (transaction_kind ~ '^[a-z][a-z_]{1,39}$'),
  percent          numeric(7,4) NOT NULL DEFAULT 0 CHECK (percent BETWEEN 0 AND 100),
  fixed            numeric(19,4) NOT NULL DEFAULT 0 CHECK (fixed >= 0),
  minimum          numeric(19,4) NOT NULL DEFAULT 0 CHECK (minimum >= 0),
  maximum          numeric(19,4) CHECK (maximum >= minimum),
  updated_by       uuid REFERENCES users (id),
  updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (currency, transaction_kind)
);

REVOKE ALL ON escrow_transitions, escrows, disputes, dispute_evidence, fee_schedules FROM ledgerline_app;
GRANT SELECT ON escrow_transitions, escrows, disputes, dispute_evidence, fee_schedules TO ledgerline_app;
