-- An invoice as the API shows it (docs/api.md "Invoices"): the one rendering, for the
-- routes that read it (ledgerline.invoices.store) and for its payment's answer
-- (invoice_pay), so an invoice as paid is the invoice as read. Each line carries its
-- total (quantity × unit_price, exact: invoice_guard refused any other).
--
-- PL/pgSQL, not SQL: a SQL function with a subquery is not inlined, and PostgreSQL 16
-- parses and plans its body on every call (0.5 ms of a payment's each time, measured);
-- PL/pgSQL keeps the plan.
CREATE OR REPLACE FUNCTION invoice_json(i invoices) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN jsonb_build_object(
    'id', i.id, 'number', i.number, 'seller_id', i.seller_id, 'buyer_id', i.buyer_id,
    'amount', api_money(i.amount, i.currency), 'currency', i.currency,
    'items', (SELECT jsonb_agg(jsonb_build_object(
                       'description', it->>'description', 'quantity', it->>'quantity', 'unit_price', it->>'unit_price',
                       'total', api_money((it->>'quantity')::numeric * (it->>'unit_price')::numeric, i.currency))
                     ORDER BY n)
                FROM jsonb_array_elements(i.items) WITH ORDINALITY AS e (it, n)),
    'status', i.status, 'due_date', i.due_date, 'escrow_id', i.escrow_id, 'version', i.version,
    'created_at', api_time(i.created_at), 'updated_at', api_time(i.updated_at), 'paid_at', api_time(i.paid_at),
    'deleted_at', api_time(i.deleted_at));
END $$;

-- Callable by the application role (the invoice routes) and the owner.
REVOKE ALL ON FUNCTION invoice_json(invoices) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION invoice_json(invoices) TO ledgerline_app;
