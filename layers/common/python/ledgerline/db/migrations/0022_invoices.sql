-- Invoices (issue 17): a seller bills a buyer; the buyer pays it into an escrow of its own
-- (POST /v1/invoices/{id}/pay, invoice_pay), which holds the money until the buyer accepts
-- or a dispute is resolved.
--
-- PENDING ──pay──► PAID                 (the escrow FUNDED with the amount, same statement)
--    │ ├──due date passed──► OVERDUE ──pay──► PAID
--    │ │                        └──delete──► CANCELLED
--    └─┴──delete (soft)──► CANCELLED
--
-- The machine, the amount and what may change when are enforced by invoice_guard (a
-- trigger, db/routines/invoice_guard.sql) for every writer. The application role writes
-- the non-money changes itself (create, edit, soft delete, the overdue flag) through
-- column grants; it holds no grant on escrow_id, so only invoice_pay (SECURITY DEFINER,
-- in the money statement) can make an invoice PAID.
--
-- Items are a jsonb array on the invoice, not a child table: an invoice's lines are one
-- value, always read, priced, replaced (PATCH) and audited (before/after) whole, never
-- queried one by one; one row keeps the amount and the lines it is derived from in one
-- place, where the guard derives it on every write.

-- Human-readable numbers, INV-000123: unique and increasing, not gapless (a rolled back
-- create spends one).
CREATE SEQUENCE invoice_numbers;

CREATE TABLE invoices (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- six digits at least, more once past INV-999999 (lpad alone would truncate)
  number      text NOT NULL UNIQUE
                DEFAULT 'INV-' || regexp_replace(lpad(nextval('invoice_numbers')::text, 20, '0'), '^0{0,14}', '')
                CHECK (number ~ '^INV-[0-9]{6,}$'),
  seller_id   uuid NOT NULL REFERENCES users (id),
  buyer_id    uuid NOT NULL REFERENCES users (id),
  currency    text NOT NULL REFERENCES currencies (code),
  -- [{description, quantity, unit_price}], quantities and prices as exact decimal text
  items       jsonb NOT NULL CHECK (jsonb_typeof(items) = 'array' AND jsonb_array_length(items) BETWEEN 1 AND 100),
  amount      numeric(19,4) NOT NULL CHECK (amount > 0),  -- Σ quantity × unit_price (invoice_guard derives it)
  due_date    date NOT NULL,
  status      text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'PAID', 'CANCELLED', 'OVERDUE')),
  escrow_id   uuid UNIQUE,
  version     integer NOT NULL DEFAULT 1 CHECK (version > 0),  -- +1 on every change
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  paid_at     timestamptz,
  deleted_at  timestamptz,  -- soft delete: the row stays, CANCELLED, for the audit trail
  CONSTRAINT invoices_two_parties CHECK (buyer_id <> seller_id),
  CONSTRAINT invoices_paid CHECK ((status = 'PAID') = (escrow_id IS NOT NULL) AND (escrow_id IS NULL) = (paid_at IS NULL)),
  -- Deleting an unpaid invoice cancels it; a paid one cannot be deleted.
  CONSTRAINT invoices_deleted CHECK ((status = 'CANCELLED') = (deleted_at IS NOT NULL))
);

-- The escrow an invoice was paid into is this invoice's, between the same parties, for
-- exactly its amount and currency: the database proves it, not the code that paid it.
ALTER TABLE escrows ADD CONSTRAINT escrows_invoice FOREIGN KEY (invoice_id) REFERENCES invoices (id);
ALTER TABLE escrows ADD CONSTRAINT escrows_invoice_terms UNIQUE (id, invoice_id, buyer_id, seller_id, currency, amount);
ALTER TABLE invoices ADD CONSTRAINT invoices_escrow
  FOREIGN KEY (escrow_id, id, buyer_id, seller_id, currency, amount)
  REFERENCES escrows (id, invoice_id, buyer_id, seller_id, currency, amount);

CREATE INDEX invoices_seller ON invoices (seller_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX invoices_buyer ON invoices (buyer_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX invoices_due ON invoices (due_date, id) WHERE status = 'PENDING';

REVOKE ALL ON invoices FROM ledgerline_app;
GRANT SELECT ON invoices TO ledgerline_app;
GRANT INSERT (seller_id, buyer_id, currency, items, due_date) ON invoices TO ledgerline_app;
GRANT UPDATE (buyer_id, currency, items, due_date, status, deleted_at) ON invoices TO ledgerline_app;
GRANT USAGE ON SEQUENCE invoice_numbers TO ledgerline_app;
