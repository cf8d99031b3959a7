-- Write audit rows in the caller's transaction, one per element of p_rows:
-- {"category", "action", "resource_type"?, "resource_id"?, "before"?, "after"?,
-- "metadata"?, "subjects"?: [user id, ...], "ledger"?: true}. p_before and p_after (what
-- the caller's change did: a posting's balances and entries, a hold before and after, an
-- account's status) are merged into every row's payloads. A row with "ledger" is a
-- posting's: its subjects include the owners of the balances it moved.
-- subject_ids (whose event it is besides its actor's: the activity feed finds it by them)
-- are the row's "subjects" and, for a "ledger" row, the owners of every account whose
-- balance the posting changed (p_before's "balances" keys), and the owner of the account or
-- hold the row is about: a transfer's recipient, the wallet a gateway credits, the owner
-- of a wallet an administrator froze or of a hold that expired see it in their feed.
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
                         resource_type, resource_id, payload_before, payload_after, metadata, subject_ids,
                         content_hash)
  SELECT r->>'category', r->>'action', (p_actor->>'id')::uuid, p_actor->>'type', (p_actor->>'ip')::inet,
         p_actor->>'user_agent', x.resource_type,
         coalesce(r->>'resource_id', p_resource_id),
         CASE WHEN p_before IS NULL THEN r->'before' ELSE coalesce(r->'before', '{}'::jsonb) || p_before END,
         CASE WHEN p_after IS NULL THEN r->'after' ELSE coalesce(r->'after', '{}'::jsonb) || p_after END,
         coalesce(p_actor->'metadata', '{}'::jsonb) || coalesce(r->'metadata', '{}'::jsonb),
         ARRAY(SELECT DISTINCT s.id FROM (
                 SELECT (jsonb_array_elements_text(coalesce(r->'subjects', '[]'::jsonb)))::uuid AS id
                 UNION ALL
                 SELECT a.owner_id FROM accounts a
                  WHERE (r->>'ledger')::boolean
                    AND a.id IN (SELECT k::uuid FROM jsonb_object_keys(coalesce(p_before->'balances', '{}'::jsonb)) k)
                 UNION ALL
                 SELECT a.owner_id FROM accounts a WHERE x.resource_type = 'account' AND a.id = x.rid
                 UNION ALL
                 SELECT a.owner_id FROM holds h JOIN accounts a ON a.id = h.account_id
                  WHERE x.resource_type = 'hold' AND h.id = x.rid
               ) s WHERE s.id IS NOT NULL ORDER BY s.id),
         ''
    FROM jsonb_array_elements(coalesce(p_rows, '[]'::jsonb)) AS r
   CROSS JOIN LATERAL (
     SELECT coalesce(r->>'resource_type', 'transaction') AS resource_type,
            CASE WHEN coalesce(r->>'resource_id', p_resource_id) ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                 THEN coalesce(r->>'resource_id', p_resource_id)::uuid END AS rid
   ) x;
END $$;

-- Nobody may call it but its owner (and the owner's SECURITY DEFINER functions).
REVOKE ALL ON FUNCTION ledger_audit(jsonb, jsonb, text, jsonb, jsonb) FROM PUBLIC;
