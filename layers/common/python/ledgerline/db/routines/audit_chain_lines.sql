-- The shipped lines of the chained rows p_first..p_last, in seq order, with the UTC date
-- of each row's occurred_at (its dt= folder). A line is the Glue table's row as one JSON
-- object: the chain fields first, then the canonical record without its opening brace:
--   {"seq":N,"prev_hash":"<hex>","chain_hash":"<hex>","content_hash":"<hex>",<record[1:]>
-- so that `audit verify` finds the record's exact bytes at a fixed place after the seq
-- and hashes them without re-rendering JSON (docs/audit.md).
CREATE OR REPLACE FUNCTION audit_chain_lines(p_first bigint, p_last bigint)
RETURNS TABLE (seq bigint, dt date, line text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT c.seq, (c.occurred_at AT TIME ZONE 'UTC')::date,
         '{"seq":' || c.seq
         || ',"prev_hash":"' || encode(c.prev_hash, 'hex')
         || '","chain_hash":"' || encode(c.chain_hash, 'hex')
         || '","content_hash":"' || encode(c.content_hash, 'hex') || '",'
         || substr(audit_chain_record(
              p_id => a.id, p_occurred_at => a.occurred_at, p_category => a.category, p_action => a.action,
              p_actor_id => a.actor_id, p_actor_type => a.actor_type, p_actor_ip => a.actor_ip,
              p_user_agent => a.user_agent, p_resource_type => a.resource_type, p_resource_id => a.resource_id,
              p_payload_before => a.payload_before, p_payload_after => a.payload_after,
              p_metadata => a.metadata), 2)
    FROM audit_chain c
    JOIN audit_log a ON a.id = c.audit_id
   WHERE c.seq BETWEEN p_first AND p_last
   ORDER BY c.seq
$$;

REVOKE ALL ON FUNCTION audit_chain_lines(bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_chain_lines(bigint, bigint) TO ledgerline_app;
