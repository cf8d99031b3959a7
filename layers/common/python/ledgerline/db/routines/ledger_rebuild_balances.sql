-- Recompute every cached balance from the entries and the active holds (repair after an
-- incident; check_invariants says whether it is needed). Postings wait meanwhile.
-- Returns the number of balances that were wrong.
CREATE OR REPLACE FUNCTION ledger_rebuild_balances() RETURNS integer
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

-- Callable by the application role (and the owner), not by PUBLIC.
REVOKE ALL ON FUNCTION ledger_rebuild_balances() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_rebuild_balances() TO ledgerline_app;
