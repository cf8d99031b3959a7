-- Freeze, unfreeze or close an account. Locks the balance row first, so a status change
-- and a posting on the same account are ordered: a posting that started before a freeze
-- commits before it, nothing starts after it. Only an empty account (nothing posted,
-- folded or not, nothing held) can be closed, and a closed account is never reopened.
CREATE OR REPLACE FUNCTION ledger_set_account_status(
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
    PERFORM ledger_audit(p_actor => p_actor, p_rows => p_audit, p_resource_id => a.id::text,
                         p_before => jsonb_build_object('status', v_before),
                         p_after => jsonb_build_object('status', a.status, 'reason', p_reason));
  END IF;
  RETURN to_jsonb(a);
END $$;

-- Callable by the application role (and the owner), not by PUBLIC.
REVOKE ALL ON FUNCTION ledger_set_account_status(uuid, text, text, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_set_account_status(uuid, text, text, jsonb, jsonb) TO ledgerline_app;
