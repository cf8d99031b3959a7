-- An escrow as the API shows it (docs/api.md "Escrow"): Money objects, RFC 3339 times,
-- its dispute (or null). Not allowed_transitions: that depends on who asks, and each
-- answer adds the caller's own list (escrow_allowed): a buyer is not shown what only the
-- seller may do.
--
-- seller_amount is what the seller was paid (amount - fee) once released: with the fee it
-- is the escrowed amount exactly (fee_quote's rule).
--
-- PL/pgSQL, not SQL: a SQL function that reads tables is not inlined, and PostgreSQL 16
-- parses and plans its body on every call (every escrow request renders one); PL/pgSQL
-- keeps the plan.
CREATE OR REPLACE FUNCTION escrow_json(e escrows) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  RETURN jsonb_build_object(
    'id', e.id, 'buyer_id', e.buyer_id, 'seller_id', e.seller_id, 'amount', api_money(e.amount, e.currency),
    'description', e.description, 'status', e.status, 'account_id', e.account_id, 'invoice_id', e.invoice_id,
    'funded_from', e.funded_from,
    'fee', CASE WHEN e.fee IS NOT NULL THEN api_money(e.fee, e.currency) END,
    'seller_amount', CASE WHEN e.fee IS NOT NULL THEN api_money(e.amount - e.fee, e.currency) END,
    'fund_transaction_id', e.fund_transaction_id, 'settle_transaction_id', e.settle_transaction_id,
    'dispute', (SELECT jsonb_build_object(
                  'id', d.id, 'raised_by', d.raised_by, 'reason', d.reason, 'status', d.status, 'outcome', d.outcome,
                  'resolved_by', d.resolved_by, 'resolution_reason', d.resolution_reason,
                  'raised_at', api_time(d.raised_at), 'resolved_at', api_time(d.resolved_at))
                  FROM disputes d WHERE d.escrow_id = e.id),
    'created_by', e.created_by, 'created_at', api_time(e.created_at), 'funded_at', api_time(e.funded_at),
    'settled_at', api_time(e.settled_at), 'updated_at', api_time(e.updated_at));
END $$;

-- Callable by the application role (GET /v1/escrows/{id}, the invoices' reads) and the owner.
REVOKE ALL ON FUNCTION escrow_json(escrows) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION escrow_json(escrows) TO ledgerline_app;
