-- A cheap digest of an audit row in PostgreSQL's own rendering (jsonb's text: built-in,
-- no per-object query), for `audit verify`'s comparison with the database at 100k rows/s:
-- the canonical record (audit_chain_record) costs a query per JSON object, too slow to
-- re-render the whole trail. The shipper takes both from the same row at once; the
-- batch's digest of digests is in its signed checkpoint, so a row edited in the database
-- later cannot be made to match again without the audit key. Not a format anyone else
-- computes: only this function, at chain time and at verify time. occurred_at is taken in
-- UTC so that the session's TimeZone cannot change it.
CREATE OR REPLACE FUNCTION audit_chain_row_digest(
  p_id uuid, p_occurred_at timestamptz, p_category text, p_action text, p_actor_id uuid,
  p_actor_type text, p_actor_ip inet, p_user_agent text, p_resource_type text,
  p_resource_id text, p_payload_before jsonb, p_payload_after jsonb, p_metadata jsonb
) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT sha256(convert_to(jsonb_build_array(
    p_id, p_occurred_at AT TIME ZONE 'UTC', p_category, p_action, p_actor_id, p_actor_type, host(p_actor_ip),
    p_user_agent, p_resource_type, p_resource_id, p_payload_before, p_payload_after, p_metadata)::text, 'UTF8'))
$$;

REVOKE ALL ON FUNCTION audit_chain_row_digest(uuid, timestamptz, text, text, uuid, text, inet, text, text, text, jsonb, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_chain_row_digest(uuid, timestamptz, text, text, uuid, text, inet, text, text, text, jsonb, jsonb, jsonb) TO ledgerline_app;
