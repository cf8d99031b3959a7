-- Write audit rows in the caller's transaction, one per element of p_rows:
-- {"category", "action", "resource_type"?, "resource_id"?, "before"?, "after"?,
-- "metadata"?, "ledger"?: true}. A row with "ledger" gets p_before and p_after (the
-- posting's balances before and after, and its entries) merged into its payloads.
-- p_actor is {"id", "type", "ip", "user_agent", "metadata"}. The content hash is the
-- audit_log_hash trigger's.
--
-- PL/pgSQL, not SQL: PostgreSQL 16 plans a SQL function's body on every call; PL/pgSQL
-- caches the plan (this is on every money operation's path). Not callable by the
-- application role: only the money functions write audit rows through it.
CREATE OR REPLACE FUNCTION ledger_audit(p_actor jsonb, p_rows jsonb, p_resource_id text, p_before jsonb, p_after jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  INSERT INTO audit_log (category, action, actor_id, actor_type, actor_ip, user_agent,
                         resource_type, resource_id, payload_before, payload_after, metadata, content_hash)
  SELECT r->>'category', r->>'action', (p_actor->>'id')::uuid, p_actor->>'type', (p_actor->>'ip')::inet,
         p_actor->>'user_agent', coalesce(r->>'resource_type', 'transaction'),
         coalesce(r->>'resource_id', p_resource_id),
         CASE WHEN (r->>'ledger')::boolean THEN coalesce(r->'before', '{}'::jsonb) || p_before ELSE r->'before' END,
         CASE WHEN (r->>'ledger')::boolean THEN coalesce(r->'after', '{}'::jsonb) || p_after ELSE r->'after' END,
         coalesce(p_actor->'metadata', '{}'::jsonb) || coalesce(r->'metadata', '{}'::jsonb), ''
    FROM jsonb_array_elements(coalesce(p_rows, '[]'::jsonb)) AS r;
END $$;

-- Nobody may call it but its owner (and the owner's SECURITY DEFINER functions).
REVOKE ALL ON FUNCTION ledger_audit(jsonb, jsonb, text, jsonb, jsonb) FROM PUBLIC;
