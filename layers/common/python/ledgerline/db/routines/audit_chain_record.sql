-- The canonical record of one audit row: the bytes its content hash is taken over, and
-- exactly what the shipped line carries after its chain fields (docs/audit.md). A compact
-- JSON object with the Glue table's content columns, keys sorted: every value a JSON
-- string or null; occurred_at as YYYY-MM-DDTHH:MM:SS.ffffffZ (UTC, always six digits);
-- actor_ip as host() prints it; payload_before, payload_after and metadata as strings
-- holding their canonical JSON (audit_chain_canonical_json), as the Glue table reads them.
-- content_hash = sha256 of its UTF-8 bytes. Arguments, not the audit_log row type, so that
-- the table can be repartitioned without touching this function.
CREATE OR REPLACE FUNCTION audit_chain_record(
  p_id uuid, p_occurred_at timestamptz, p_category text, p_action text, p_actor_id uuid,
  p_actor_type text, p_actor_ip inet, p_user_agent text, p_resource_type text,
  p_resource_id text, p_payload_before jsonb, p_payload_after jsonb, p_metadata jsonb
) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT '{"action":' || to_json(p_action)::text
      || ',"actor_id":' || coalesce(to_json(p_actor_id::text)::text, 'null')
      || ',"actor_ip":' || coalesce(to_json(host(p_actor_ip))::text, 'null')
      || ',"actor_type":' || to_json(p_actor_type)::text
      || ',"category":' || to_json(p_category)::text
      || ',"id":' || to_json(p_id::text)::text
      || ',"metadata":' || coalesce(to_json(audit_chain_canonical_json(p_metadata))::text, 'null')
      || ',"occurred_at":' || to_json(to_char(p_occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text
      || ',"payload_after":' || coalesce(to_json(audit_chain_canonical_json(p_payload_after))::text, 'null')
      || ',"payload_before":' || coalesce(to_json(audit_chain_canonical_json(p_payload_before))::text, 'null')
      || ',"resource_id":' || coalesce(to_json(p_resource_id)::text, 'null')
      || ',"resource_type":' || to_json(p_resource_type)::text
      || ',"user_agent":' || coalesce(to_json(p_user_agent)::text, 'null')
      || '}'
$$;

REVOKE ALL ON FUNCTION audit_chain_record(uuid, timestamptz, text, text, uuid, text, inet, text, text, text, jsonb, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_chain_record(uuid, timestamptz, text, text, uuid, text, inet, text, text, text, jsonb, jsonb, jsonb) TO ledgerline_app;
