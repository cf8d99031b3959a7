-- A withdrawal as the API shows it (docs/api.md "Payments"): the destination's account
-- number only as its last four (masked), never the ciphertext or the blind index.
CREATE OR REPLACE FUNCTION withdrawal_json(w withdrawals) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', w.id, 'account_id', w.account_id, 'amount', api_money(w.amount, w.currency), 'status', w.status,
    'hold_id', w.hold_id, 'provider', w.provider,
    'destination', jsonb_build_object('bank_code', w.bank_code, 'account_number', '****' || w.account_number_last4,
                                      'account_name', w.account_name),
    'payout_account_id', w.payout_account_id, 'bulk_payout_id', w.bulk_payout_id,
    'step_up', w.step_up, 'reason', w.reason, 'payout_id', w.payout_id,
    'capture_transaction_id', w.capture_transaction_id, 'settlement_transaction_id', w.settlement_transaction_id,
    'reversal_transaction_id', w.reversal_transaction_id,
    'created_at', api_time(w.created_at), 'decided_at', api_time(w.decided_at),
    'submitted_at', api_time(w.submitted_at), 'settled_at', api_time(w.settled_at));
$$;

-- Callable by the application role (GET /v1/withdrawals/{id}) and the owner.
REVOKE ALL ON FUNCTION withdrawal_json(withdrawals) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION withdrawal_json(withdrawals) TO ledgerline_app;
