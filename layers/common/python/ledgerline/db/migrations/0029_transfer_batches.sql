-- Batch transfers (issue 19, POST /v1/transfers/batch): up to 1,000 transfers in one
-- request, all or nothing ("atomic") or each with its own result ("independent").
--
-- One row per batch that posted something: who sent it, its mode and what came of it.
-- A batch refused whole (atomic) leaves no row, as it leaves no money moved. Each
-- transfer of a batch is an ordinary 'transfer' transaction whose metadata names its
-- batch and index ({"batch_id", "batch_index"}), so it reads and reverses like any
-- other; the batch's response itself is the Idempotency-Key's stored response.
CREATE TABLE transfer_batches (
  id            uuid PRIMARY KEY,
  owner_id      uuid REFERENCES users (id),  -- whose accounts it debited (NULL: an administrator's)
  actor_id      uuid,
  actor_type    text NOT NULL,
  mode          text NOT NULL CHECK (mode IN ('atomic', 'independent')),
  item_count    integer NOT NULL CHECK (item_count BETWEEN 1 AND 1000),
  posted_count  integer NOT NULL CHECK (posted_count BETWEEN 0 AND item_count),
  -- {currency: total posted}
  totals        jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT transfer_batches_atomic_all CHECK (mode = 'independent' OR posted_count = item_count)
);
CREATE INDEX transfer_batches_owner ON transfer_batches (owner_id, created_at DESC);

-- Written only by transfer_batch (SECURITY DEFINER); the application reads.
REVOKE ALL ON transfer_batches FROM ledgerline_app;
GRANT SELECT ON transfer_batches TO ledgerline_app;
