-- Field-encryption key generations and the progress of re-encrypting rows under them
-- (ledgerline.crypto.rotation). Every encrypted field's envelope carries the time its data
-- key was made; a generation's cut-off says which envelopes are older than it. No key
-- material is stored here: data keys live wrapped inside each envelope.

CREATE TABLE crypto_key_generations (
  generation       integer PRIMARY KEY CHECK (generation > 0),
  -- Envelopes whose data key was made before this instant (ms since the epoch, the
  -- envelope's own clock) are re-encrypted by this generation's rotation.
  cutoff_ms        bigint NOT NULL CHECK (cutoff_ms > 0),
  key_id           text NOT NULL,          -- the wrapping key new data keys come from
  status           text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed')),
  -- Writers elsewhere may keep using a data key made before the cut-off until it expires:
  -- the rotation sweeps again once this moment has passed.
  settle_at        timestamptz NOT NULL,
  started_at       timestamptz NOT NULL DEFAULT now(),
  completed_at     timestamptz,
  rows_reencrypted bigint NOT NULL DEFAULT 0 CHECK (rows_reencrypted >= 0),
  CONSTRAINT crypto_key_generations_completed CHECK ((status = 'completed') = (completed_at IS NOT NULL))
);

-- At most one rotation runs at a time; a second `keys rotate` resumes it.
CREATE UNIQUE INDEX crypto_key_generations_one_running ON crypto_key_generations ((true)) WHERE status = 'running';

CREATE TABLE crypto_rotation_progress (
  generation       integer NOT NULL REFERENCES crypto_key_generations,
  table_name       text NOT NULL,
  column_name      text NOT NULL,
  -- 1: the first scan; 2: the sweep after the settle time, which must find nothing older.
  pass             smallint NOT NULL DEFAULT 1 CHECK (pass IN (1, 2)),
  last_id          text,                   -- keyset cursor: the id column's text form
  done             boolean NOT NULL DEFAULT false,
  rows_reencrypted bigint NOT NULL DEFAULT 0 CHECK (rows_reencrypted >= 0),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (generation, table_name, column_name)
);

-- History of key changes is kept: rows are completed, never removed.
REVOKE DELETE, TRUNCATE ON crypto_key_generations, crypto_rotation_progress FROM ledgerline_app;
