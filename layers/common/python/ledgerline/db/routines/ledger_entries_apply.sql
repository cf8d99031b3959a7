-- Invariants 3, 5 and 6 for every writer of entries, checked once per statement.
--
-- Every entry a statement inserts: its transaction was written by this database
-- transaction (so the deferred zero-sum check sees all of them), its currency is a ledger
-- currency within its minor units and its account's currency (invariant 3). Then hot
-- accounts get a delta row each (never a lock on their balance); other balances move by
-- the statement's sum, and each entry must carry the balance and version it produced
-- (invariant 5: the writer computed them from the locked balance; a writer that did not
-- is refused, and so is one that breaks invariant 6).
--
-- Entries have no foreign keys on purpose: a foreign key check share-locks the
-- referenced row, and every posting to a hot system account would queue on multixacts
-- of that one account row. This trigger checks both instead; accounts and transactions
-- are never deleted and those columns never change, so the checks hold.
--
-- Cost (every posting runs this, and PL/pgSQL sets up each statement it runs again in
-- every transaction): the usual statement, a posting's entries, one per non-hot account,
-- costs one query that finds nothing wrong (no aggregate: an aggregate's set-up costs
-- more than the check) and one UPDATE that applies and verifies every balance. Anything
-- else (a hot account, an account with several entries, a bad entry) takes the general
-- way: a query that says whether any entry is bad (then a second names it) and any is
-- hot, the deltas' INSERT, an UPDATE per account of the statement's sum, and the
-- running-balance check when an account has several entries (or one is wrong). Key
-- probes only (enable_seqscan: see ledger_post).
CREATE OR REPLACE FUNCTION ledger_entries_apply() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET enable_seqscan = off AS $$
DECLARE
  r record;
  v_bad boolean;
  v_hot boolean;
  v_recheck boolean;
  v_ok boolean;
BEGIN
  -- The usual statement: valid entries, at most one per non-hot account (a posting's). One
  -- statement checks them all first (ok, a one-time condition: nothing is applied unless
  -- every entry is fine), then appends the hot accounts' deltas and moves and verifies
  -- the other balances. Anything else applies nothing here and takes the general way.
  WITH ok AS MATERIALIZED (
    SELECT NOT EXISTS (
      SELECT 1
        FROM inserted e
        LEFT JOIN transactions t ON t.id = e.transaction_id
        LEFT JOIN currencies c ON c.code = e.currency
        LEFT JOIN balances b ON b.account_id = e.account_id
       WHERE t.id IS NULL OR t.created_xid <> pg_current_xact_id() OR c.code IS NULL
          OR e.amount <> round(e.amount, c.minor_units) OR b.account_id IS NULL OR b.currency <> e.currency
          OR (b.hot AND (e.balance_after IS NOT NULL OR e.account_version IS NOT NULL))
          OR (NOT b.hot AND (e.balance_after IS NULL OR e.account_version IS NULL))
          OR (e.account_version IS NOT NULL AND EXISTS (
                SELECT 1 FROM inserted d WHERE d.account_id = e.account_id AND d.id <> e.id))
    ) AS ok
  ), deltas AS (
    INSERT INTO balance_deltas (account_id, amount)
    SELECT e.account_id, e.amount FROM ok, inserted e WHERE ok.ok AND e.account_version IS NULL
  ), applied AS (
    UPDATE balances b SET posted = b.posted + e.amount, version = b.version + 1
      FROM ok, inserted e
     WHERE ok.ok AND b.account_id = e.account_id AND e.account_version IS NOT NULL
    RETURNING e.balance_after <> b.posted OR e.account_version <> b.version AS wrong
  )
  SELECT ok.ok, EXISTS (SELECT 1 FROM applied a WHERE a.wrong) INTO v_ok, v_recheck FROM ok;
  IF NOT v_ok THEN
    SELECT bool_or(t.id IS NULL OR t.created_xid <> pg_current_xact_id() OR c.code IS NULL
                   OR e.amount <> round(e.amount, c.minor_units) OR b.account_id IS NULL OR b.currency <> e.currency
                   OR (b.hot AND (e.balance_after IS NOT NULL OR e.account_version IS NOT NULL))
                   OR (NOT b.hot AND (e.balance_after IS NULL OR e.account_version IS NULL))),
           bool_or(e.account_version IS NULL)
      INTO v_bad, v_hot
      FROM inserted e
      LEFT JOIN transactions t ON t.id = e.transaction_id
      LEFT JOIN currencies c ON c.code = e.currency
      LEFT JOIN balances b ON b.account_id = e.account_id;
    IF v_bad THEN
      SELECT e.transaction_id, e.account_id, e.currency, e.amount, e.balance_after, e.account_version,
             t.id IS NOT NULL AND t.created_xid = pg_current_xact_id() AS same_transaction,
             c.minor_units, b.account_id IS NOT NULL AS account_found, b.currency AS account_currency, b.hot
        INTO r
        FROM inserted e
        LEFT JOIN transactions t ON t.id = e.transaction_id
        LEFT JOIN currencies c ON c.code = e.currency
        LEFT JOIN balances b ON b.account_id = e.account_id
       WHERE t.id IS NULL OR t.created_xid <> pg_current_xact_id() OR c.code IS NULL
          OR e.amount <> round(e.amount, c.minor_units) OR b.account_id IS NULL OR b.currency <> e.currency
          OR (b.hot AND (e.balance_after IS NOT NULL OR e.account_version IS NOT NULL))
          OR (NOT b.hot AND (e.balance_after IS NULL OR e.account_version IS NULL))
       LIMIT 1;
      IF NOT r.same_transaction THEN
        RAISE EXCEPTION 'entry for transaction %: entries are only written together with their transaction',
          r.transaction_id USING ERRCODE = 'check_violation';
      ELSIF r.minor_units IS NULL THEN
        RAISE EXCEPTION 'entry currency % is not a ledger currency', r.currency USING ERRCODE = 'check_violation';
      ELSIF r.amount <> round(r.amount, r.minor_units) THEN
        RAISE EXCEPTION 'entry amount % has more decimal places than % allows (%)', r.amount, r.currency, r.minor_units
          USING ERRCODE = 'check_violation';
      ELSIF NOT r.account_found THEN
        RAISE EXCEPTION 'entry for account %: no such account', r.account_id USING ERRCODE = 'foreign_key_violation';
      ELSIF r.account_currency <> r.currency THEN
        RAISE EXCEPTION 'entry currency % does not match account % currency %', r.currency, r.account_id,
          r.account_currency USING ERRCODE = 'check_violation', CONSTRAINT = 'entries_currency_matches_account';
      ELSE
        RAISE EXCEPTION 'entry for account %: a % account''s entry % its balance_after and account_version',
          r.account_id, CASE WHEN r.hot THEN 'hot' ELSE 'non-hot' END,
          CASE WHEN r.hot THEN 'has no' ELSE 'carries' END USING ERRCODE = 'check_violation';
      END IF;
    END IF;

    IF v_hot THEN
      INSERT INTO balance_deltas (account_id, amount)
      SELECT e.account_id, e.amount FROM inserted e WHERE e.account_version IS NULL;
    END IF;

    -- Each non-hot balance moves by its entries' sum. An account's only entry must carry the
    -- balance and version this produced; entries of an account with several (or a wrong
    -- one) are checked one by one, each following the one before.
    WITH per_account AS (
      SELECT e.account_id, sum(e.amount) AS net, count(*) AS n, max(e.balance_after) AS balance_after,
             max(e.account_version) AS account_version
        FROM inserted e WHERE e.account_version IS NOT NULL GROUP BY e.account_id
    ), applied AS (
      UPDATE balances b SET posted = b.posted + p.net, version = b.version + p.n
        FROM per_account p WHERE b.account_id = p.account_id AND NOT b.hot
      RETURNING p.n > 1 OR p.balance_after <> b.posted OR p.account_version <> b.version AS recheck
    )
    SELECT bool_or(a.recheck) INTO v_recheck FROM applied a;
  END IF;

  IF v_recheck THEN
    WITH per_account AS (
      SELECT e.account_id, sum(e.amount) AS net, count(*) AS n
        FROM inserted e WHERE e.account_version IS NOT NULL GROUP BY e.account_id
    ), expected AS (
      SELECT e.account_id, e.balance_after, e.account_version,
             b.posted - p.net + sum(e.amount) OVER w AS want_balance,
             b.version - p.n + row_number() OVER w AS want_version
        FROM inserted e
        JOIN per_account p ON p.account_id = e.account_id
        JOIN balances b ON b.account_id = e.account_id
      WINDOW w AS (PARTITION BY e.account_id ORDER BY e.account_version)
    )
    SELECT * INTO r FROM expected
     WHERE balance_after IS DISTINCT FROM want_balance OR account_version IS DISTINCT FROM want_version LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'entry for account %: balance_after % and version % do not follow its balance (% and %)',
        r.account_id, r.balance_after, r.account_version, r.want_balance, r.want_version
        USING ERRCODE = 'check_violation', CONSTRAINT = 'entries_follow_balance';
    END IF;
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER entries_apply AFTER INSERT ON entries REFERENCING NEW TABLE AS inserted
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_apply();
