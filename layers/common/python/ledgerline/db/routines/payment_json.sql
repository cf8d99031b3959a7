-- A payment as the API shows it (POST /v1/topups, GET /v1/payments/{id}): one rendering,
-- so a top-up as created is the payment as read.
CREATE OR REPLACE FUNCTION payment_json(p payments) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', p.id, 'reference', p.reference, 'status', p.status, 'provider', p.provider, 'account_id', p.account_id,
    'amount', api_money(p.amount, p.currency), 'checkout', p.checkout, 'transaction_id', p.transaction_id,
    'reason', p.reason, 'created_at', api_time(p.created_at), 'updated_at', api_time(p.updated_at));
$$;

REVOKE ALL ON FUNCTION payment_json(payments) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION payment_json(payments) TO ledgerline_app;
