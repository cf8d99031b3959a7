-- Invariants 3, 5 and 6 for every writer of entries, checked once per statement.
--
-- Every entry a statement inserts: its transaction was written by this database
-- transaction (so the deferred zero-sum check sees all of them), its currency is a ledger
-- currency within its minor units and its account's currency (invariant 3). Then, in one
-- statement per kind: hot accounts get a delta row each (never a lock on their balance);
-- other balances move by the statement's sum, and each entry must carry the balance and
-- version it produced (invariant 5: the writer computed them from the locked balance; a
-- writer that did not is refused, and so is one that breaks invariant 6).
--
-- Entries have no foreign keys on purpose: a foreign key check share-locks the
-- referenced row, and every posting to a hot system account would queue on multixacts
-- of that one account row. This trigger checks both instead; accounts and transactions
-- are never deleted and those columns never change, so the checks hold.
CREATE OR REPLACE FUNCTION ledger_entries_apply() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  r record;
BEGIN
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
  IF FOUND THEN
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

  INSERT INTO balance_deltas (account_id, amount)
  SELECT e.account_id, e.amount FROM inserted e WHERE e.account_version IS NULL;

  WITH per_account AS (
    SELECT account_id, sum(amount) AS net, count(*) AS n FROM inserted
     WHERE account_version IS NOT NULL GROUP BY account_id
  ), applied AS (
    UPDATE balances b SET posted = b.posted + p.net, version = b.version + p.n
      FROM per_account p WHERE b.account_id = p.account_id AND NOT b.hot
    RETURNING b.account_id, b.posted - p.net AS posted_before, b.version - p.n AS version_before
  ), expected AS (
    SELECT e.account_id, e.balance_after, e.account_version,
           a.posted_before + sum(e.amount) OVER w AS want_balance,
           a.version_before + row_number() OVER w AS want_version
      FROM inserted e JOIN applied a ON a.account_id = e.account_id
    WINDOW w AS (PARTITION BY e.account_id ORDER BY e.account_version)
  )
  SELECT * INTO r FROM expected
   WHERE balance_after IS DISTINCT FROM want_balance OR account_version IS DISTINCT FROM want_version LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'entry for account %: balance_after % and version % do not follow its balance (% and %)',
      r.account_id, r.balance_after, r.account_version, r.want_balance, r.want_version
      USING ERRCODE = 'check_violation', CONSTRAINT = 'entries_follow_balance';
  END IF;
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER entries_apply AFTER INSERT ON entries REFERENCING NEW TABLE AS inserted
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_apply();
