-- A piece of dispute evidence as the API shows it (docs/api.md, "Dispute evidence"): its
-- text, or its document (what the party declared; uploaded_at once the stored object was
-- confirmed to match it), never the object key or a link. The audit rows' payloads are
-- this shape too.
CREATE OR REPLACE FUNCTION dispute_evidence_json(d dispute_evidence) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', d.id,
    'dispute_id', d.dispute_id,
    'submitted_by', d.submitted_by,
    'text', d.body,
    'document', CASE WHEN d.object_key IS NULL THEN NULL ELSE jsonb_build_object(
                  'filename', d.filename, 'content_type', d.content_type, 'size', d.size_bytes,
                  'sha256', d.sha256, 'uploaded_at', CASE WHEN d.uploaded_at IS NULL THEN NULL
                                                          ELSE api_time(d.uploaded_at) END) END,
    'created_at', api_time(d.created_at));
$$;

REVOKE ALL ON FUNCTION dispute_evidence_json(dispute_evidence) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dispute_evidence_json(dispute_evidence) TO ledgerline_app;
