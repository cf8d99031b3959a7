-- A hold as the raising hold functions return it (ledgerline.ledger.holds.Hold.from_json)
-- and as the audit trail records it, before and after. A pinned hold (ledger_hold_pin)
-- has no expiry: expires_at null.
CREATE OR REPLACE FUNCTION ledger_hold_json(h holds) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('id', h.id, 'account_id', h.account_id, 'currency', h.currency, 'amount', h.amount,
                            'status', h.status, 'captured_amount', h.captured_amount,
                            'transaction_id', h.transaction_id,
                            'expires_at', CASE WHEN isfinite(h.expires_at) THEN h.expires_at END,
                            'description', h.description, 'created_at', h.created_at,
                            'resolved_at', h.resolved_at);
$$;
