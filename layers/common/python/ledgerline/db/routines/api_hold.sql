-- A hold as the API shows it: amounts as Money objects, times in RFC 3339 (money_op's
-- answers to the hold routes); a pinned hold's expires_at is null (it ends only when it
-- is resolved).
CREATE OR REPLACE FUNCTION api_hold(h holds) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', h.id, 'account_id', h.account_id, 'amount', api_money(h.amount, h.currency), 'status', h.status,
    'captured_amount', CASE WHEN h.captured_amount IS NOT NULL THEN api_money(h.captured_amount, h.currency) END,
    'transaction_id', h.transaction_id,
    'expires_at', CASE WHEN isfinite(h.expires_at) THEN api_time(h.expires_at) END, 'description', h.description,
    'created_at', api_time(h.created_at));
$$;
