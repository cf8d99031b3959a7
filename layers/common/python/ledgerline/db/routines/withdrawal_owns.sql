-- Whether a hold or a transaction is a withdrawal's: {"refusal": 409} if so, else NULL.
-- A withdrawal's hold and postings move only with the withdrawal (its approval, rejection
-- or payout answer: the withdrawal_* routines, which call the ledger's cores directly).
-- The ledger's by-hand entry points ask this first (the hold and reversal routes in
-- money_op, and the raising forms ledger_hold_void, ledger_hold_capture, ledger_reverse):
-- voided or reversed by hand, the money would be spendable again while the bank is paid,
-- or about to be.
CREATE OR REPLACE FUNCTION withdrawal_owns(p_hold uuid DEFAULT NULL, p_transaction uuid DEFAULT NULL) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
  SELECT jsonb_build_object('refusal', api_problem('invalid_state_transition',
           format('%s belongs to withdrawal %s: it moves only with the withdrawal (its approval, rejection '
                  'or payout)', CASE WHEN p_hold IS NOT NULL THEN 'hold ' || p_hold ELSE 'transaction ' || p_transaction END,
                  w.id)))
    FROM withdrawals w
   WHERE w.hold_id = p_hold OR w.capture_transaction_id = p_transaction OR w.settlement_transaction_id = p_transaction
      OR w.reversal_transaction_id = p_transaction
   LIMIT 1;
$$;

-- Called only inside SECURITY DEFINER functions (money_op, the ledger's raising forms).
REVOKE ALL ON FUNCTION withdrawal_owns(uuid, uuid) FROM PUBLIC;
