-- The ledger: currencies, accounts, cached balances, transactions, entries, holds, and
-- the idempotency keys of money-moving requests.
--
-- The invariants of DESIGN.md are enforced here, not only in application code:
--   1. entries and transactions are append-only (REVOKE + forbid_mutation triggers);
--   2. a transaction's entries sum to zero per currency (deferred constraint trigger);
--   3. an entry's currency is its account's currency (entry trigger; accounts' currency
--      is immutable and accounts are never deleted);
--   4. hence every currency sums to zero across the ledger;
--   5. cached balances are maintained by the entry and hold triggers themselves, in the
--      same transaction, and the application role cannot write them at all;
--   6. a balance that may not go negative has CHECK (posted - held >= 0);
--   7. a hold moves from active to exactly one of posted / voided / expired, once.
--
-- The application role may read everything here but writes money only through the
-- SECURITY DEFINER functions at the end of this file (ledger_post_legs, ledger_hold_*,
-- ledger_reverse, ledger_set_account_status, ledger_fold_balances,
-- ledger_rebuild_balances): one call per money operation, one round trip.
--
-- Errors raised for the caller carry SQLSTATEs of class LL (ledgerline.ledger.sql maps
-- them): LLNF0 not found, LLIF0 insufficient funds, LLCF0 conflict (account frozen or
-- closed), LLST0 invalid state transition, LLVL0 invalid request.

-- Currencies ------------------------------------------------------------------------

CREATE TABLE currencies (
  code        text PRIMARY KEY CHECK (code ~ '^[A-Z]{3}$'),
  minor_units smallint NOT NULL CHECK (minor_units BETWEEN 0 AND 4)
);

-- The same list as ledgerline.money.CURRENCIES (a test keeps the two equal).
INSERT INTO currencies (code, minor_units) VALUES
  ('NGN', 2), ('USD', 2), ('EUR', 2), ('GBP', 2), ('KES', 2), ('GHS', 2), ('ZAR', 2),
  ('JPY', 0), ('KWD', 3), ('XOF', 0), ('UGX', 0), ('RWF', 0), ('EGP', 2), ('CAD', 2);

-- Amounts already written depend on a currency's minor units: never change or drop one.
CREATE TRIGGER currencies_immutable BEFORE UPDATE OR DELETE ON currencies
  FOR EACH ROW EXECUTE FUNCTION forbid_mutation();
CREATE TRIGGER currencies_no_truncate BEFORE TRUNCATE ON currencies
  FOR EACH STATEMENT EXECUTE FUNCTION forbid_mutation();
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON currencies FROM ledgerline_app;
GRANT SELECT ON currencies TO ledgerline_app;

-- Accounts --------------------------------------------------------------------------

CREATE TABLE accounts (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id        uuid REFERENCES users (id),
  kind            text NOT NULL CHECK (kind IN (
                    'user_wallet', 'escrow',
                    'external_funding', 'fees_revenue', 'payout_clearing', 'adjustments')),
  currency        text NOT NULL REFERENCES currencies (code),
  may_go_negative boolean NOT NULL DEFAULT false,
  -- A hot account is credited and debited by appending balance_deltas rows instead of
  -- updating (and so locking) its balance row; ledger_fold_balances folds them in. Only
  -- an account that may go negative can be hot: nothing checks its balance per posting.
  hot             boolean NOT NULL DEFAULT false,
  status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen', 'closed')),
  name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT accounts_hot_may_go_negative CHECK (NOT hot OR may_go_negative),
  CONSTRAINT accounts_wallet_owned CHECK (kind <> 'user_wallet' OR owner_id IS NOT NULL),
  CONSTRAINT accounts_wallet_non_negative CHECK (kind NOT IN ('user_wallet', 'escrow') OR NOT may_go_negative),
  CONSTRAINT accounts_system_unowned CHECK (
    kind NOT IN ('external_funding', 'fees_revenue', 'payout_clearing', 'adjustments') OR owner_id IS NULL),
  -- Targets of the composite foreign keys that keep copies of these columns honest.
  CONSTRAINT accounts_id_currency UNIQUE (id, currency),
  CONSTRAINT accounts_id_flags UNIQUE (id, currency, hot, may_go_negative)
);

CREATE INDEX accounts_owner ON accounts (owner_id, created_at, id) WHERE owner_id IS NOT NULL;
CREATE UNIQUE INDEX accounts_system_per_currency ON accounts (kind, currency)
  WHERE kind IN ('external_funding', 'fees_revenue', 'payout_clearing', 'adjustments');

-- What an account is never changes; only its status, name and metadata do, and a closed
-- account stays closed.
CREATE FUNCTION ledger_account_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF (NEW.id, NEW.owner_id, NEW.kind, NEW.currency, NEW.may_go_negative, NEW.hot, NEW.created_at)
     IS DISTINCT FROM
     (OLD.id, OLD.owner_id, OLD.kind, OLD.currency, OLD.may_go_negative, OLD.hot, OLD.created_at) THEN
    RAISE EXCEPTION 'account %: id, owner, kind, currency, may_go_negative and hot never change', OLD.id
      USING ERRCODE = 'check_violation';
  END IF;
  IF OLD.status = 'closed' AND NEW.status <> 'closed' THEN
    RAISE EXCEPTION 'account % is closed; a closed account is never reopened', OLD.id
      USING ERRCODE = 'LLST0';
  END IF;
  IF NEW.status <> OLD.status THEN
    UPDATE balances SET status = NEW.status WHERE account_id = NEW.id;
  END IF;
  NEW.updated_at := now();
  RETURN NEW;
END $$;

CREATE TRIGGER accounts_guard BEFORE UPDATE ON accounts
  FOR EACH ROW EXECUTE FUNCTION ledger_account_guard();
CREATE TRIGGER accounts_no_delete BEFORE DELETE ON accounts
  FOR EACH ROW EXECUTE FUNCTION forbid_mutation();
CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON accounts
  FOR EACH STATEMENT EXECUTE FUNCTION forbid_mutation();

-- Status changes go through ledger_set_account_status (it serializes with postings).
REVOKE UPDATE, DELETE, TRUNCATE ON accounts FROM ledgerline_app;
GRANT SELECT, INSERT ON accounts TO ledgerline_app;

-- Cached balances ---------------------------------------------------------------------

CREATE TABLE balances (
  account_id      uuid PRIMARY KEY,
  currency        text NOT NULL,
  hot             boolean NOT NULL,
  may_go_negative boolean NOT NULL,
  -- Sum of the account's entries (for a hot account: of those folded so far). Wider than
  -- one amount: a system account sums every posting of its currency. (A non-hot balance
  -- stays within NUMERIC(19,4) anyway: its entries' balance_after must fit.)
  posted          numeric(38,4) NOT NULL DEFAULT 0,
  -- Sum of the account's active holds.
  held            numeric(19,4) NOT NULL DEFAULT 0 CHECK (held >= 0),
  -- Bumped by every change; entries of non-hot accounts record the version they made.
  version         bigint NOT NULL DEFAULT 0,
  -- The account's status, kept equal by ledger_account_guard: a posting reads it from the
  -- balance row it has just locked, so a freeze committed while it waited is seen.
  status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'frozen', 'closed')),
  CONSTRAINT balances_account FOREIGN KEY (account_id, currency, hot, may_go_negative)
    REFERENCES accounts (id, currency, hot, may_go_negative),
  -- Invariant 6, for every writer and under any concurrency.
  CONSTRAINT balances_available_non_negative CHECK (may_go_negative OR posted - held >= 0),
  CONSTRAINT balances_hot_has_no_holds CHECK (NOT hot OR held = 0)
);

-- Unfolded postings to hot accounts. Folding deletes the rows it adds to ``posted`` in
-- one statement (one snapshot), so a delta is counted exactly once: either here or there.
CREATE TABLE balance_deltas (
  account_id uuid NOT NULL,
  amount     numeric(19,4) NOT NULL
);
CREATE INDEX balance_deltas_account ON balance_deltas (account_id);

REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON balances, balance_deltas FROM ledgerline_app;
GRANT SELECT ON balances, balance_deltas TO ledgerline_app;

CREATE FUNCTION ledger_account_opened() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  INSERT INTO balances (account_id, currency, hot, may_go_negative, status)
  VALUES (NEW.id, NEW.currency, NEW.hot, NEW.may_go_negative, NEW.status);
  RETURN NULL;
END $$;

CREATE TRIGGER accounts_balance AFTER INSERT ON accounts
  FOR EACH ROW EXECUTE FUNCTION ledger_account_opened();

-- Transactions and entries ------------------------------------------------------------

CREATE TABLE transactions (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  kind        text NOT NULL CHECK (kind ~ '^[a-z][a-z_]{1,39}$'),
  -- Transactions only exist once posted: pending money is a hold, never a transaction.
  status      text NOT NULL DEFAULT 'posted' CHECK (status = 'posted'),
  description text CHECK (length(description) <= 500),
  -- An external reference (gateway reference, payout id): at most one transaction each.
  reference   text CHECK (length(reference) BETWEEN 1 AND 200),
  metadata    jsonb NOT NULL DEFAULT '{}'::jsonb,
  actor_id    uuid,
  actor_type  text NOT NULL,
  -- A transaction is reversed at most once, by a new mirror transaction (unique index below).
  reverses    uuid REFERENCES transactions (id),
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- The writing database transaction: entries may only join a transaction written in
  -- the same database transaction, so the deferred balance check sees all of them.
  created_xid xid8 NOT NULL DEFAULT pg_current_xact_id()
);

-- Partial: most transactions have neither, and every index entry costs every posting.
CREATE UNIQUE INDEX transactions_reference_key ON transactions (reference) WHERE reference IS NOT NULL;
CREATE UNIQUE INDEX transactions_reverses_key ON transactions (reverses) WHERE reverses IS NOT NULL;

CREATE TABLE entries (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- No foreign keys on purpose: a foreign key check share-locks the referenced row, and
  -- every posting to a hot system account would queue on multixacts of that one account
  -- row. ledger_entry_apply checks both instead: the account exists in the entry's currency
  -- and the transaction was written by the same database transaction. Accounts and
  -- transactions are never deleted and those columns never change, so the checks hold.
  transaction_id  uuid NOT NULL,
  account_id      uuid NOT NULL,
  currency        text NOT NULL,
  amount          numeric(19,4) NOT NULL CHECK (amount <> 0),
  entry_type      text NOT NULL CHECK (entry_type ~ '^[a-z][a-z_]{1,39}$'),
  counterpart_id  uuid,
  -- The account's posted balance right after this entry (non-hot accounts), and the
  -- balance version it produced: balance-at-time is one index probe, not a sum.
  balance_after   numeric(19,4),
  account_version bigint,
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX entries_transaction ON entries (transaction_id);
CREATE INDEX entries_account_time ON entries (account_id, created_at);

-- Invariant 1: the ledger is append-only, for the owner too.
CREATE TRIGGER transactions_immutable BEFORE UPDATE OR DELETE ON transactions
  FOR EACH ROW EXECUTE FUNCTION forbid_mutation();
CREATE TRIGGER transactions_no_truncate BEFORE TRUNCATE ON transactions
  FOR EACH STATEMENT EXECUTE FUNCTION forbid_mutation();
CREATE TRIGGER entries_immutable BEFORE UPDATE OR DELETE ON entries
  FOR EACH ROW EXECUTE FUNCTION forbid_mutation();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
  FOR EACH STATEMENT EXECUTE FUNCTION forbid_mutation();
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON transactions, entries FROM ledgerline_app;
GRANT SELECT ON transactions, entries TO ledgerline_app;

-- Applies an entry to its account's cached balance (invariant 5) before the entry row is
-- written, checking the account and the currency (invariant 3) on the way. A non-hot
-- balance row is updated, which also enforces invariant 6 through its CHECK; a hot
-- account gets a delta row instead, so concurrent postings to it never wait on each other.
CREATE FUNCTION ledger_entry_apply() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_units            smallint;
  v_hot              boolean;
  v_currency         text;
  v_same_transaction boolean;
BEGIN
  -- The common case in one statement: a non-hot account in the entry's currency, an amount
  -- within the currency's minor units, a transaction written by this database transaction.
  UPDATE balances b
     SET posted = b.posted + NEW.amount, version = b.version + 1
    FROM currencies c, transactions t
   WHERE b.account_id = NEW.account_id AND b.currency = NEW.currency AND NOT b.hot
     AND c.code = NEW.currency AND NEW.amount = round(NEW.amount, c.minor_units)
     AND t.id = NEW.transaction_id AND t.created_xid = pg_current_xact_id()
  RETURNING b.posted, b.version INTO NEW.balance_after, NEW.account_version;

  IF NOT FOUND THEN
    -- A hot account: append a delta instead of updating (and locking) its balance row,
    -- with the same checks in the same statement.
    INSERT INTO balance_deltas (account_id, amount)
    SELECT b.account_id, NEW.amount
      FROM balances b, currencies c, transactions t
     WHERE b.account_id = NEW.account_id AND b.currency = NEW.currency AND b.hot
       AND c.code = NEW.currency AND NEW.amount = round(NEW.amount, c.minor_units)
       AND t.id = NEW.transaction_id AND t.created_xid = pg_current_xact_id();
    IF NOT FOUND THEN
      SELECT b.hot, b.currency, c.minor_units,
             EXISTS (SELECT 1 FROM transactions t
                      WHERE t.id = NEW.transaction_id AND t.created_xid = pg_current_xact_id())
        INTO v_hot, v_currency, v_units, v_same_transaction
        FROM (SELECT 1) one
        LEFT JOIN balances b ON b.account_id = NEW.account_id
        LEFT JOIN currencies c ON c.code = NEW.currency;
      -- Entries join a transaction written in this same database transaction only, so the
      -- deferred zero-sum check on that transaction sees every entry it will ever have.
      IF NOT v_same_transaction THEN
        RAISE EXCEPTION 'entry for transaction %: entries are only written together with their transaction',
          NEW.transaction_id USING ERRCODE = 'check_violation';
      END IF;
      IF v_units IS NULL THEN
        RAISE EXCEPTION 'entry currency % is not a ledger currency', NEW.currency USING ERRCODE = 'check_violation';
      END IF;
      IF NEW.amount <> round(NEW.amount, v_units) THEN
        RAISE EXCEPTION 'entry amount % has more decimal places than % allows (%)', NEW.amount, NEW.currency, v_units
          USING ERRCODE = 'check_violation';
      END IF;
      IF v_currency IS NULL THEN
        RAISE EXCEPTION 'entry for account %: no such account', NEW.account_id USING ERRCODE = 'foreign_key_violation';
      END IF;
      RAISE EXCEPTION 'entry currency % does not match account % currency %', NEW.currency, NEW.account_id, v_currency
        USING ERRCODE = 'check_violation', CONSTRAINT = 'entries_currency_matches_account';
    END IF;
    NEW.balance_after := NULL;
    NEW.account_version := NULL;
  END IF;
  -- Taken after the balance row lock, so per account the entries' times follow the
  -- order in which their balance_after values were produced.
  NEW.created_at := clock_timestamp();
  RETURN NEW;
END $$;

CREATE TRIGGER entries_apply BEFORE INSERT ON entries
  FOR EACH ROW EXECUTE FUNCTION ledger_entry_apply();

-- Invariant 2 (and so 4), checked at COMMIT when every entry is in: each transaction has
-- at least two entries and they sum to zero per currency. A reversal must mirror the
-- transaction it reverses exactly.
CREATE FUNCTION ledger_transaction_balanced() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_count    bigint;
  v_currency text;  -- "<currency> <sum>" of the first unbalanced currency
BEGIN
  -- One pass: the entry count, and the first currency that does not sum to zero.
  SELECT sum(c.n), min(c.currency || ' ' || c.total) FILTER (WHERE c.total <> 0)
    INTO v_count, v_currency
    FROM (SELECT e.currency, count(*) AS n, sum(e.amount) AS total
            FROM entries e WHERE e.transaction_id = NEW.id GROUP BY e.currency) c;
  IF coalesce(v_count, 0) < 2 THEN
    RAISE EXCEPTION 'transaction % has % entries; a transaction needs at least two', NEW.id, coalesce(v_count, 0)
      USING ERRCODE = 'check_violation', CONSTRAINT = 'transactions_balanced';
  END IF;
  IF v_currency IS NOT NULL THEN
    RAISE EXCEPTION 'transaction % is unbalanced: its % entries sum to %, not zero',
      NEW.id, split_part(v_currency, ' ', 1), split_part(v_currency, ' ', 2)
      USING ERRCODE = 'check_violation', CONSTRAINT = 'transactions_balanced';
  END IF;
  IF NEW.reverses IS NOT NULL THEN
    PERFORM 1 FROM (
      (SELECT account_id, currency, amount FROM entries WHERE transaction_id = NEW.id
       EXCEPT ALL
       SELECT account_id, currency, -amount FROM entries WHERE transaction_id = NEW.reverses)
      UNION ALL
      (SELECT account_id, currency, -amount FROM entries WHERE transaction_id = NEW.reverses
       EXCEPT ALL
       SELECT account_id, currency, amount FROM entries WHERE transaction_id = NEW.id)
    ) difference;
    IF FOUND THEN
      RAISE EXCEPTION 'transaction % does not mirror the transaction % it reverses', NEW.id, NEW.reverses
        USING ERRCODE = 'check_violation', CONSTRAINT = 'transactions_reversal_mirrors';
    END IF;
  END IF;
  RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER transactions_balanced AFTER INSERT ON transactions
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_transaction_balanced();

-- Holds -------------------------------------------------------------------------------

CREATE TABLE holds (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id      uuid NOT NULL,
  currency        text NOT NULL,
  amount          numeric(19,4) NOT NULL CHECK (amount > 0),
  status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'posted', 'voided', 'expired')),
  captured_amount numeric(19,4) CHECK (captured_amount > 0 AND captured_amount <= amount),
  transaction_id  uuid UNIQUE REFERENCES transactions (id) DEFERRABLE INITIALLY DEFERRED,
  expires_at      timestamptz NOT NULL,
  description     text CHECK (length(description) <= 500),
  metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
  actor_id        uuid,
  created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  resolved_at     timestamptz,
  CONSTRAINT holds_account FOREIGN KEY (account_id, currency) REFERENCES accounts (id, currency),
  CONSTRAINT holds_posted_is_captured CHECK (
    (status = 'posted') = (transaction_id IS NOT NULL) AND (status = 'posted') = (captured_amount IS NOT NULL)),
  CONSTRAINT holds_resolved_once CHECK ((status = 'active') = (resolved_at IS NULL)),
  CONSTRAINT holds_expiry_after_creation CHECK (expires_at > created_at)
);

CREATE INDEX holds_account ON holds (account_id, created_at);
CREATE INDEX holds_due ON holds (expires_at) WHERE status = 'active';

-- Invariant 7: an active hold counts in its balance's ``held``; it resolves once, to
-- exactly one of posted / voided / expired, which releases it. Nothing else changes.
CREATE FUNCTION ledger_hold_apply() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.status <> 'active' OR NEW.resolved_at IS NOT NULL THEN
      RAISE EXCEPTION 'a hold starts active' USING ERRCODE = 'check_violation';
    END IF;
    UPDATE balances b SET held = b.held + NEW.amount, version = b.version + 1
     WHERE b.account_id = NEW.account_id AND NOT b.hot;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'holds are placed on wallet accounts only (account %)', NEW.account_id
        USING ERRCODE = 'LLVL0';
    END IF;
    RETURN NEW;
  END IF;

  IF OLD.status <> 'active' THEN
    RAISE EXCEPTION 'hold % is already %; a hold is resolved once', OLD.id, OLD.status USING ERRCODE = 'LLST0';
  END IF;
  IF (NEW.id, NEW.account_id, NEW.currency, NEW.amount, NEW.expires_at, NEW.created_at, NEW.actor_id)
     IS DISTINCT FROM
     (OLD.id, OLD.account_id, OLD.currency, OLD.amount, OLD.expires_at, OLD.created_at, OLD.actor_id) THEN
    RAISE EXCEPTION 'hold %: only its resolution may change', OLD.id USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status = 'active' THEN
    RAISE EXCEPTION 'hold %: an update must resolve it (posted, voided or expired)', OLD.id
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status = 'posted' AND clock_timestamp() >= OLD.expires_at THEN
    RAISE EXCEPTION 'hold % expired at %; it can no longer be captured', OLD.id, OLD.expires_at
      USING ERRCODE = 'LLST0';
  END IF;
  UPDATE balances b SET held = b.held - OLD.amount, version = b.version + 1 WHERE b.account_id = OLD.account_id;
  RETURN NEW;
END $$;

CREATE TRIGGER holds_apply BEFORE INSERT OR UPDATE ON holds
  FOR EACH ROW EXECUTE FUNCTION ledger_hold_apply();
CREATE TRIGGER holds_no_delete BEFORE DELETE ON holds
  FOR EACH ROW EXECUTE FUNCTION forbid_mutation();
CREATE TRIGGER holds_no_truncate BEFORE TRUNCATE ON holds
  FOR EACH STATEMENT EXECUTE FUNCTION forbid_mutation();

-- A posted hold became entries: its capture transaction debits the hold's account by
-- exactly the captured amount (checked at COMMIT, when the transaction exists).
CREATE FUNCTION ledger_hold_posted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  PERFORM 1 FROM entries e
   WHERE e.transaction_id = NEW.transaction_id AND e.account_id = NEW.account_id
     AND e.amount = -NEW.captured_amount;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'hold % is posted but transaction % does not debit % of account %',
      NEW.id, NEW.transaction_id, NEW.captured_amount, NEW.account_id
      USING ERRCODE = 'check_violation', CONSTRAINT = 'holds_posted_has_entries';
  END IF;
  RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER holds_posted_has_entries AFTER UPDATE ON holds
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.status = 'posted')
  EXECUTE FUNCTION ledger_hold_posted();

REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON holds FROM ledgerline_app;
GRANT SELECT ON holds TO ledgerline_app;

-- System accounts ---------------------------------------------------------------------

-- One of each per currency, hot (appended to, never locked) and allowed to go negative:
-- external_funding goes negative as money enters the ledger, payout_clearing holds what
-- is on its way out, fees_revenue collects fees, adjustments balances manual corrections.
CREATE FUNCTION ledger_create_system_accounts(p_currency text) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO accounts (kind, currency, may_go_negative, hot, name)
  SELECT k.kind, p_currency, true, true, k.label || ' (' || p_currency || ')'
    FROM (VALUES ('external_funding', 'External funding'), ('fees_revenue', 'Fees revenue'),
                 ('payout_clearing', 'Payout clearing'), ('adjustments', 'Adjustments')) AS k(kind, label)
  ON CONFLICT DO NOTHING;
$$;

SELECT ledger_create_system_accounts(code) FROM currencies ORDER BY code;

-- A currency added by a later migration gets its system accounts at once.
CREATE FUNCTION ledger_currency_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM ledger_create_system_accounts(NEW.code);
  RETURN NULL;
END $$;

CREATE TRIGGER currencies_system_accounts AFTER INSERT ON currencies
  FOR EACH ROW EXECUTE FUNCTION ledger_currency_added();

-- Idempotency keys --------------------------------------------------------------------

-- One row per (caller, key). The claiming database transaction inserts it, runs the
-- operation and stores the response before it commits, so a committed row always has
-- its response, and a duplicate request waits on the uncommitted row, then replays it.
CREATE TABLE idempotency_keys (
  scope         text NOT NULL,
  key           uuid NOT NULL,
  request_hash  text NOT NULL,
  status_code   smallint,
  response_body text,
  content_type  text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL DEFAULT now() + interval '24 hours',
  PRIMARY KEY (scope, key)
);

CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- Claim a key: returns claimed = true when this transaction now owns it, otherwise the
-- stored request hash and response (an expired key is claimed afresh). A duplicate that
-- is still running makes this wait at most p_wait_ms, then fail with lock_not_available.
CREATE FUNCTION idempotency_claim(p_scope text, p_key uuid, p_request_hash text, p_wait_ms integer)
RETURNS TABLE (claimed boolean, request_hash text, status_code smallint, response_body text, content_type text)
LANGUAGE plpgsql AS $$
DECLARE
  v_saved text := current_setting('lock_timeout');
BEGIN
  PERFORM set_config('lock_timeout', p_wait_ms || 'ms', true);
  INSERT INTO idempotency_keys AS k (scope, key, request_hash)
  VALUES (p_scope, p_key, p_request_hash)
  ON CONFLICT (scope, key) DO UPDATE
     SET request_hash = EXCLUDED.request_hash, status_code = NULL, response_body = NULL, content_type = NULL,
         created_at = now(), expires_at = now() + interval '24 hours'
   WHERE k.expires_at <= now();
  claimed := FOUND;
  PERFORM set_config('lock_timeout', v_saved, true);
  IF claimed THEN
    RETURN NEXT;
    RETURN;
  END IF;
  RETURN QUERY
    SELECT false, k.request_hash, k.status_code, k.response_body, k.content_type
      FROM idempotency_keys k WHERE k.scope = p_scope AND k.key = p_key;
END $$;

-- Money-moving functions --------------------------------------------------------------
--
-- p_actor is {"id", "type", "ip", "user_agent", "metadata"}; p_audit is an array of
-- audit rows to write in the same transaction: {"category", "action", "resource_type"?,
-- "resource_id"?, "before"?, "after"?, "ledger"?: true}. A row with "ledger" gets the
-- posting's balances before and after and its entries as payloads.

-- PL/pgSQL, not SQL: PostgreSQL 16 plans a SQL function's body on every call; PL/pgSQL
-- caches the plan (this is on every money operation's path).
CREATE FUNCTION ledger_audit(p_actor jsonb, p_rows jsonb, p_resource_id text, p_before jsonb, p_after jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  INSERT INTO audit_log (category, action, actor_id, actor_type, actor_ip, user_agent,
                         resource_type, resource_id, payload_before, payload_after, metadata, content_hash)
  SELECT r->>'category', r->>'action', (p_actor->>'id')::uuid, p_actor->>'type', (p_actor->>'ip')::inet,
         p_actor->>'user_agent', coalesce(r->>'resource_type', 'transaction'),
         coalesce(r->>'resource_id', p_resource_id),
         CASE WHEN (r->>'ledger')::boolean THEN coalesce(r->'before', '{}'::jsonb) || p_before ELSE r->'before' END,
         CASE WHEN (r->>'ledger')::boolean THEN coalesce(r->'after', '{}'::jsonb) || p_after ELSE r->'after' END,
         coalesce(p_actor->'metadata', '{}'::jsonb) || coalesce(r->'metadata', '{}'::jsonb), ''
    FROM jsonb_array_elements(coalesce(p_rows, '[]'::jsonb)) AS r;
END $$;

-- Post one balanced transaction of any number of legs, in one call: lock the non-hot
-- balances it touches in account-id order (so concurrent postings over the same accounts
-- queue instead of deadlocking; hot accounts are appended to, never locked), check every
-- account and the available funds, write the transaction and its entries (the entry
-- trigger updates the balances), write the audit rows, and return the transaction.
--
-- p_owner (optional): every debited account must belong to this user (else "not found").
-- p_credit_kinds (optional): every credited account must be of one of these kinds.
CREATE FUNCTION ledger_post_legs(
  p_kind          text,
  p_accounts      uuid[],
  p_currencies    text[],
  p_amounts       numeric[],
  p_entry_types   text[],
  p_counterparts  uuid[],
  p_actor         jsonb,
  p_audit         jsonb DEFAULT NULL,
  p_description   text DEFAULT NULL,
  p_reference     text DEFAULT NULL,
  p_metadata      jsonb DEFAULT NULL,
  p_reverses      uuid DEFAULT NULL,
  p_allow_frozen  boolean DEFAULT false,
  p_owner         uuid DEFAULT NULL,
  p_credit_kinds  text[] DEFAULT NULL,
  p_id            uuid DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_id      uuid := coalesce(p_id, gen_random_uuid());
  v_n       integer := coalesce(array_length(p_accounts, 1), 0);
  v_created timestamptz;
  v_before  jsonb := '{}'::jsonb;
  v_after   jsonb := '{}'::jsonb;
  v_entries jsonb;
  r         record;
BEGIN
  IF v_n < 2 THEN
    RAISE EXCEPTION 'a transaction needs at least two legs' USING ERRCODE = 'LLVL0';
  END IF;
  IF coalesce(array_length(p_currencies, 1), 0) <> v_n OR coalesce(array_length(p_amounts, 1), 0) <> v_n
     OR coalesce(array_length(p_entry_types, 1), 0) <> v_n OR coalesce(array_length(p_counterparts, 1), 0) <> v_n THEN
    RAISE EXCEPTION 'every leg needs an account, currency, amount, entry type and counterpart (or null)'
      USING ERRCODE = 'LLVL0';
  END IF;

  -- One statement locks the non-hot balances (in account-id order) and reads everything
  -- to check. The locked rows are read as they are once locked, status included.
  FOR r IN
    WITH locked AS MATERIALIZED (
      SELECT b.account_id, b.posted, b.held, b.status FROM balances b
       WHERE b.account_id = ANY (p_accounts) AND NOT b.hot
       ORDER BY b.account_id FOR UPDATE
    )
    SELECT l.account_id, l.currency AS leg_currency, l.currency_max AS leg_currency_max, l.net, l.debited,
           a.id IS NOT NULL AS found, a.currency, coalesce(k.status, a.status) AS status, a.kind, a.owner_id,
           a.hot, a.may_go_negative, coalesce(k.posted, hb.posted) AS posted, coalesce(k.held, hb.held) AS held
      FROM (SELECT u.account_id, min(u.currency) AS currency, max(u.currency) AS currency_max,
                   sum(u.amount) AS net, bool_or(u.amount < 0) AS debited
              FROM unnest(p_accounts, p_currencies, p_amounts) AS u(account_id, currency, amount)
             GROUP BY u.account_id) l
      LEFT JOIN accounts a ON a.id = l.account_id
      LEFT JOIN locked k ON k.account_id = l.account_id
      LEFT JOIN balances hb ON hb.account_id = l.account_id AND hb.hot
  LOOP
    IF NOT r.found OR (p_owner IS NOT NULL AND r.debited AND r.owner_id IS DISTINCT FROM p_owner) THEN
      RAISE EXCEPTION 'account % not found', r.account_id USING ERRCODE = 'LLNF0';
    END IF;
    IF p_credit_kinds IS NOT NULL AND NOT r.debited AND NOT (r.kind = ANY (p_credit_kinds)) THEN
      RAISE EXCEPTION 'account % not found (it cannot receive this kind of transaction)', r.account_id
        USING ERRCODE = 'LLNF0';
    END IF;
    IF r.leg_currency <> r.currency OR r.leg_currency_max <> r.currency THEN
      RAISE EXCEPTION 'account % holds %, not %', r.account_id, r.currency, r.leg_currency USING ERRCODE = 'LLVL0';
    END IF;
    IF r.status = 'closed' OR (r.status = 'frozen' AND NOT p_allow_frozen) THEN
      RAISE EXCEPTION 'account % is %; it cannot send or receive money', r.account_id, r.status
        USING ERRCODE = 'LLCF0';
    END IF;
    IF NOT r.may_go_negative AND r.posted - r.held + r.net < 0 THEN
      RAISE EXCEPTION 'account % has % % available; this needs %', r.account_id, r.posted - r.held, r.currency, -r.net
        USING ERRCODE = 'LLIF0';
    END IF;
    IF NOT r.hot THEN
      v_before := v_before || jsonb_build_object(r.account_id::text, r.posted);
      v_after := v_after || jsonb_build_object(r.account_id::text, r.posted + r.net);
    END IF;
  END LOOP;

  INSERT INTO transactions (id, kind, description, reference, metadata, actor_id, actor_type, reverses)
  VALUES (v_id, p_kind, p_description, p_reference, coalesce(p_metadata, '{}'::jsonb),
          (p_actor->>'id')::uuid, coalesce(p_actor->>'type', 'system'), p_reverses)
  RETURNING created_at INTO v_created;

  -- Credits first: an account both debited and credited here never dips on the way.
  WITH written AS (
    INSERT INTO entries (transaction_id, account_id, currency, amount, entry_type, counterpart_id)
    SELECT v_id, u.account_id, u.currency, u.amount, coalesce(u.entry_type, p_kind), u.counterpart_id
      FROM unnest(p_accounts, p_currencies, p_amounts, p_entry_types, p_counterparts)
           WITH ORDINALITY AS u(account_id, currency, amount, entry_type, counterpart_id, ord)
     ORDER BY u.amount DESC, u.ord
    RETURNING id, account_id, currency, amount, entry_type, counterpart_id, balance_after, created_at
  )
  SELECT jsonb_agg(jsonb_build_object(
           'id', w.id, 'account_id', w.account_id, 'currency', w.currency, 'amount', w.amount,
           'entry_type', w.entry_type, 'counterpart_id', w.counterpart_id,
           'balance_after', w.balance_after, 'created_at', w.created_at) ORDER BY w.created_at)
    INTO v_entries FROM written w;

  IF p_audit IS NOT NULL THEN
    PERFORM ledger_audit(p_actor, p_audit, v_id::text,
                         jsonb_build_object('balances', v_before),
                         jsonb_build_object('transaction_id', v_id, 'kind', p_kind, 'entries', v_entries,
                                            'balances', v_after));
  END IF;

  RETURN jsonb_build_object('id', v_id, 'kind', p_kind, 'status', 'posted', 'description', p_description,
                            'reference', p_reference, 'metadata', coalesce(p_metadata, '{}'::jsonb),
                            'reverses', p_reverses, 'actor_id', p_actor->>'id', 'created_at', v_created,
                            'entries', v_entries);
END $$;

CREATE FUNCTION ledger_hold_json(h holds) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('id', h.id, 'account_id', h.account_id, 'currency', h.currency, 'amount', h.amount,
                            'status', h.status, 'captured_amount', h.captured_amount,
                            'transaction_id', h.transaction_id, 'expires_at', h.expires_at,
                            'description', h.description, 'created_at', h.created_at,
                            'resolved_at', h.resolved_at);
$$;

-- Place a hold: the amount stays on the account but is no longer available.
CREATE FUNCTION ledger_hold_create(
  p_account     uuid,
  p_currency    text,
  p_amount      numeric,
  p_expires_at  timestamptz,
  p_actor       jsonb,
  p_audit       jsonb DEFAULT NULL,
  p_owner       uuid DEFAULT NULL,
  p_description text DEFAULT NULL,
  p_metadata    jsonb DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  a holds;
  r record;
BEGIN
  PERFORM 1 FROM balances b WHERE b.account_id = p_account AND NOT b.hot FOR UPDATE;
  SELECT ac.currency, ac.status, ac.owner_id, b.hot, b.posted, b.held INTO r
    FROM accounts ac JOIN balances b ON b.account_id = ac.id WHERE ac.id = p_account;
  IF NOT FOUND OR (p_owner IS NOT NULL AND r.owner_id IS DISTINCT FROM p_owner) THEN
    RAISE EXCEPTION 'account % not found', p_account USING ERRCODE = 'LLNF0';
  END IF;
  IF r.hot THEN
    RAISE EXCEPTION 'holds are placed on wallet accounts only' USING ERRCODE = 'LLVL0';
  END IF;
  IF r.currency <> p_currency THEN
    RAISE EXCEPTION 'account % holds %, not %', p_account, r.currency, p_currency USING ERRCODE = 'LLVL0';
  END IF;
  IF r.status <> 'active' THEN
    RAISE EXCEPTION 'account % is %; no new holds can be placed on it', p_account, r.status USING ERRCODE = 'LLCF0';
  END IF;
  IF r.posted - r.held < p_amount THEN
    RAISE EXCEPTION 'account % has % % available; this hold needs %', p_account, r.posted - r.held, r.currency,
      p_amount USING ERRCODE = 'LLIF0';
  END IF;
  INSERT INTO holds (account_id, currency, amount, expires_at, description, metadata, actor_id)
  VALUES (p_account, p_currency, p_amount, p_expires_at, p_description, coalesce(p_metadata, '{}'::jsonb),
          (p_actor->>'id')::uuid)
  RETURNING * INTO a;
  IF p_audit IS NOT NULL THEN
    PERFORM ledger_audit(p_actor, p_audit, a.id::text,
                         jsonb_build_object('balance', jsonb_build_object('posted', r.posted, 'held', r.held)),
                         jsonb_build_object('hold', ledger_hold_json(a),
                                            'balance', jsonb_build_object('posted', r.posted, 'held', r.held + p_amount)));
  END IF;
  RETURN ledger_hold_json(a);
END $$;

-- Capture (post) an active hold, in full or in part, to another account. The remainder
-- is released: a hold is captured once.
CREATE FUNCTION ledger_hold_capture(
  p_hold         uuid,
  p_to           uuid,
  p_amount       numeric,
  p_actor        jsonb,
  p_audit        jsonb DEFAULT NULL,
  p_owner        uuid DEFAULT NULL,
  p_credit_kinds text[] DEFAULT NULL,
  p_description  text DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  h      holds;
  v_amt  numeric;
  v_txn  uuid := gen_random_uuid();
  v_post jsonb;
  v_before jsonb;
BEGIN
  SELECT * INTO h FROM holds WHERE id = p_hold FOR UPDATE;
  IF NOT FOUND OR (p_owner IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM accounts WHERE id = h.account_id AND owner_id = p_owner)) THEN
    RAISE EXCEPTION 'hold % not found', p_hold USING ERRCODE = 'LLNF0';
  END IF;
  IF h.status <> 'active' THEN
    RAISE EXCEPTION 'hold % is %; only an active hold can be captured', p_hold, h.status USING ERRCODE = 'LLST0';
  END IF;
  IF clock_timestamp() >= h.expires_at THEN
    RAISE EXCEPTION 'hold % expired at %; it can no longer be captured', p_hold, h.expires_at USING ERRCODE = 'LLST0';
  END IF;
  v_amt := coalesce(p_amount, h.amount);
  IF v_amt <= 0 OR v_amt > h.amount THEN
    RAISE EXCEPTION 'capture amount % must be more than zero and at most the held %', v_amt, h.amount
      USING ERRCODE = 'LLVL0';
  END IF;
  IF p_to = h.account_id THEN
    RAISE EXCEPTION 'a hold is captured to another account; void it to release it' USING ERRCODE = 'LLVL0';
  END IF;
  -- Both balances in account-id order before touching either (the release below would
  -- otherwise lock the hold's account first).
  PERFORM 1 FROM balances b WHERE b.account_id IN (h.account_id, p_to) AND NOT b.hot
    ORDER BY b.account_id FOR UPDATE;
  v_before := ledger_hold_json(h);
  UPDATE holds SET status = 'posted', captured_amount = v_amt, transaction_id = v_txn, resolved_at = clock_timestamp()
   WHERE id = p_hold RETURNING * INTO h;
  v_post := ledger_post_legs(
    'hold_capture', ARRAY[h.account_id, p_to], ARRAY[h.currency, h.currency], ARRAY[-v_amt, v_amt],
    ARRAY['hold_capture', 'hold_capture'], ARRAY[p_to, h.account_id], p_actor, NULL,
    coalesce(p_description, h.description), NULL, jsonb_build_object('hold_id', h.id), NULL, false, NULL,
    p_credit_kinds, v_txn);
  IF p_audit IS NOT NULL THEN
    PERFORM ledger_audit(p_actor, p_audit, h.id::text, jsonb_build_object('hold', v_before),
                         jsonb_build_object('hold', ledger_hold_json(h), 'transaction', v_post));
  END IF;
  RETURN ledger_hold_json(h) || jsonb_build_object('transaction', v_post);
END $$;

-- Void an active hold: its amount is available again, nothing moves.
CREATE FUNCTION ledger_hold_void(p_hold uuid, p_actor jsonb, p_audit jsonb DEFAULT NULL, p_owner uuid DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  h holds;
  v_before jsonb;
BEGIN
  SELECT * INTO h FROM holds WHERE id = p_hold FOR UPDATE;
  IF NOT FOUND OR (p_owner IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM accounts WHERE id = h.account_id AND owner_id = p_owner)) THEN
    RAISE EXCEPTION 'hold % not found', p_hold USING ERRCODE = 'LLNF0';
  END IF;
  IF h.status <> 'active' THEN
    RAISE EXCEPTION 'hold % is %; only an active hold can be voided', p_hold, h.status USING ERRCODE = 'LLST0';
  END IF;
  v_before := ledger_hold_json(h);
  UPDATE holds SET status = 'voided', resolved_at = clock_timestamp() WHERE id = p_hold RETURNING * INTO h;
  IF p_audit IS NOT NULL THEN
    PERFORM ledger_audit(p_actor, p_audit, h.id::text, jsonb_build_object('hold', v_before),
                         jsonb_build_object('hold', ledger_hold_json(h)));
  END IF;
  RETURN ledger_hold_json(h);
END $$;

-- Expire up to p_limit active holds due at p_now (skipping holds being captured or voided
-- right now; the next sweep gets them if they are still active). Returns how many.
CREATE FUNCTION ledger_expire_holds(p_now timestamptz, p_limit integer, p_actor jsonb, p_audit jsonb DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  h holds;
  v_before jsonb;
  v_count integer := 0;
BEGIN
  FOR h IN
    SELECT * FROM holds WHERE status = 'active' AND expires_at <= p_now
     ORDER BY expires_at, id LIMIT p_limit FOR UPDATE SKIP LOCKED
  LOOP
    v_before := ledger_hold_json(h);
    UPDATE holds SET status = 'expired', resolved_at = clock_timestamp() WHERE id = h.id RETURNING * INTO h;
    IF p_audit IS NOT NULL THEN
      PERFORM ledger_audit(p_actor, p_audit, h.id::text, jsonb_build_object('hold', v_before),
                           jsonb_build_object('hold', ledger_hold_json(h)));
    END IF;
    v_count := v_count + 1;
  END LOOP;
  RETURN v_count;
END $$;

-- Reverse a transaction: a new transaction with every entry negated, recorded as
-- reversing the original (which stays untouched). A transaction is reversed once
-- (transactions.reverses is UNIQUE), and a reversal is not itself reversed.
CREATE FUNCTION ledger_reverse(p_transaction uuid, p_reason text, p_actor jsonb, p_audit jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  t transactions;
  v_by uuid;
  v_accounts uuid[];
  v_currencies text[];
  v_amounts numeric[];
  v_types text[];
  v_counterparts uuid[];
BEGIN
  SELECT * INTO t FROM transactions WHERE id = p_transaction;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'transaction % not found', p_transaction USING ERRCODE = 'LLNF0';
  END IF;
  IF t.kind = 'reversal' THEN
    RAISE EXCEPTION 'transaction % is a reversal; reversals are not reversed (post a new transaction instead)',
      p_transaction USING ERRCODE = 'LLST0';
  END IF;
  SELECT id INTO v_by FROM transactions WHERE reverses = p_transaction;
  IF FOUND THEN
    RAISE EXCEPTION 'transaction % was already reversed by %', p_transaction, v_by USING ERRCODE = 'LLST0';
  END IF;
  SELECT array_agg(account_id ORDER BY created_at, id), array_agg(currency ORDER BY created_at, id),
         array_agg(-amount ORDER BY created_at, id), array_agg('reversal'::text ORDER BY created_at, id),
         array_agg(counterpart_id ORDER BY created_at, id)
    INTO v_accounts, v_currencies, v_amounts, v_types, v_counterparts
    FROM entries WHERE transaction_id = p_transaction;
  RETURN ledger_post_legs('reversal', v_accounts, v_currencies, v_amounts, v_types, v_counterparts, p_actor,
                          p_audit, p_reason, NULL, jsonb_build_object('reason', p_reason), p_transaction, true);
END $$;

-- Freeze, unfreeze or close an account. Locks the balance row first, so a status change
-- and a posting on the same account are ordered: a posting that started before a freeze
-- commits before it, nothing starts after it.
CREATE FUNCTION ledger_set_account_status(
  p_account uuid, p_status text, p_reason text, p_actor jsonb, p_audit jsonb DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  a accounts;
  b balances;
  v_deltas numeric;
  v_before text;
BEGIN
  SELECT * INTO b FROM balances WHERE account_id = p_account FOR UPDATE;
  SELECT * INTO a FROM accounts WHERE id = p_account FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'account % not found', p_account USING ERRCODE = 'LLNF0';
  END IF;
  IF p_status NOT IN ('active', 'frozen', 'closed') THEN
    RAISE EXCEPTION 'status % is not one of active, frozen, closed', p_status USING ERRCODE = 'LLVL0';
  END IF;
  IF a.status = p_status OR a.status = 'closed' THEN
    RAISE EXCEPTION 'account % is already %', p_account, a.status USING ERRCODE = 'LLST0';
  END IF;
  IF p_status = 'closed' THEN
    SELECT coalesce(sum(amount), 0) INTO v_deltas FROM balance_deltas WHERE account_id = p_account;
    IF b.posted + v_deltas <> 0 OR b.held <> 0 THEN
      RAISE EXCEPTION 'account % still has a balance (% posted, % held); empty it before closing it',
        p_account, b.posted + v_deltas, b.held USING ERRCODE = 'LLCF0';
    END IF;
  END IF;
  v_before := a.status;
  UPDATE accounts SET status = p_status WHERE id = p_account RETURNING * INTO a;
  IF p_audit IS NOT NULL THEN
    PERFORM ledger_audit(p_actor, p_audit, a.id::text, jsonb_build_object('status', v_before),
                         jsonb_build_object('status', a.status, 'reason', p_reason));
  END IF;
  RETURN to_jsonb(a);
END $$;

-- Fold hot accounts' deltas into their balances, one account per statement (one
-- snapshot each: the deltas deleted are exactly the ones added; deltas committed
-- meanwhile wait for the next fold). A failure on one account never holds up the others.
CREATE FUNCTION ledger_fold_balances() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_account uuid;
  v_rows    integer;
  v_total   integer := 0;
BEGIN
  FOR v_account IN SELECT account_id FROM balances WHERE hot ORDER BY account_id LOOP
    BEGIN
      WITH folded AS (
        DELETE FROM balance_deltas WHERE account_id = v_account RETURNING amount
      ), applied AS (
        UPDATE balances b SET posted = b.posted + t.amount, version = b.version + 1
          FROM (SELECT sum(amount) AS amount, count(*) AS n FROM folded) t
         WHERE b.account_id = v_account AND t.n > 0
        RETURNING t.n
      )
      SELECT coalesce(sum(n), 0) INTO v_rows FROM applied;
      v_total := v_total + v_rows;
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'could not fold the deltas of account %: %', v_account, SQLERRM;
    END;
  END LOOP;
  RETURN v_total;
END $$;

-- Recompute every cached balance from the entries and the active holds (repair after an
-- incident; check_invariants says whether it is needed). Postings wait meanwhile.
-- Returns the number of balances that were wrong.
CREATE FUNCTION ledger_rebuild_balances() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_fixed integer;
BEGIN
  LOCK TABLE balances, holds IN SHARE ROW EXCLUSIVE MODE;
  -- One statement, one snapshot: the deltas deleted are exactly those the sums include.
  WITH folded AS (
    DELETE FROM balance_deltas RETURNING account_id
  ), truth AS (
    SELECT b.account_id, b.held AS cached_held,
           b.posted + coalesce((SELECT sum(d.amount) FROM balance_deltas d WHERE d.account_id = b.account_id), 0)
             AS cached_posted,
           coalesce((SELECT sum(e.amount) FROM entries e WHERE e.account_id = b.account_id), 0) AS posted,
           coalesce((SELECT sum(h.amount) FROM holds h WHERE h.account_id = b.account_id AND h.status = 'active'), 0)
             AS held
      FROM balances b
  ), fixed AS (
    UPDATE balances b SET posted = t.posted, held = t.held, version = b.version + 1
      FROM truth t
     WHERE b.account_id = t.account_id AND (b.posted <> t.posted OR b.held <> t.held)
    RETURNING t.cached_posted <> t.posted OR t.cached_held <> t.held AS wrong
  )
  SELECT count(*) FILTER (WHERE wrong) INTO v_fixed FROM fixed;
  RETURN v_fixed;
END $$;

-- Only the application role calls the money functions.
REVOKE ALL ON FUNCTION
  idempotency_claim(text, uuid, text, integer),
  ledger_audit(jsonb, jsonb, text, jsonb, jsonb),
  ledger_post_legs(text, uuid[], text[], numeric[], text[], uuid[], jsonb, jsonb, text, text, jsonb, uuid, boolean,
                   uuid, text[], uuid),
  ledger_hold_create(uuid, text, numeric, timestamptz, jsonb, jsonb, uuid, text, jsonb),
  ledger_hold_capture(uuid, uuid, numeric, jsonb, jsonb, uuid, text[], text),
  ledger_hold_void(uuid, jsonb, jsonb, uuid),
  ledger_expire_holds(timestamptz, integer, jsonb, jsonb),
  ledger_reverse(uuid, text, jsonb, jsonb),
  ledger_set_account_status(uuid, text, text, jsonb, jsonb),
  ledger_fold_balances(),
  ledger_rebuild_balances(),
  ledger_create_system_accounts(text)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  idempotency_claim(text, uuid, text, integer),
  ledger_post_legs(text, uuid[], text[], numeric[], text[], uuid[], jsonb, jsonb, text, text, jsonb, uuid, boolean,
                   uuid, text[], uuid),
  ledger_hold_create(uuid, text, numeric, timestamptz, jsonb, jsonb, uuid, text, jsonb),
  ledger_hold_capture(uuid, uuid, numeric, jsonb, jsonb, uuid, text[], text),
  ledger_hold_void(uuid, jsonb, jsonb, uuid),
  ledger_expire_holds(timestamptz, integer, jsonb, jsonb),
  ledger_reverse(uuid, text, jsonb, jsonb),
  ledger_set_account_status(uuid, text, text, jsonb, jsonb),
  ledger_fold_balances(),
  ledger_rebuild_balances()
TO ledgerline_app;
