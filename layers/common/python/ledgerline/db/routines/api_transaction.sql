-- A posted transaction as the API shows it (GET /v1/transfers/{id} and reversals).
CREATE OR REPLACE FUNCTION api_transaction(p_transaction jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', p_transaction->'id', 'kind', p_transaction->'kind', 'status', 'posted',
    'description', p_transaction->'description', 'reverses', p_transaction->'reverses', 'reversed_by', NULL,
    'entries', (SELECT jsonb_agg(jsonb_build_object(
                  'account_id', e->'account_id', 'id', e->'id', 'transaction_id', p_transaction->'id',
                  'amount', api_money((e->>'amount')::numeric, e->>'currency'), 'entry_type', e->'entry_type',
                  'balance_after', CASE WHEN e->>'balance_after' IS NOT NULL
                                        THEN api_money((e->>'balance_after')::numeric, e->>'currency') END,
                  'created_at', api_time((e->>'created_at')::timestamptz))
                  ORDER BY (e->>'amount')::numeric)
                  FROM jsonb_array_elements(p_transaction->'entries') e),
    'created_at', api_time((p_transaction->>'created_at')::timestamptz));
$$;
