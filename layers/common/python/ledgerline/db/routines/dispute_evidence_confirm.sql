-- POST /v1/escrows/{id}/dispute/evidence/{evidence_id}/confirm: the party who declared a
-- document says it is uploaded; ledgerline.evidence has read the stored object back and
-- passes what it found (p_size NULL: nothing there) and the version it read. Only an
-- object of exactly the declared size, content type and SHA-256 becomes evidence: that
-- version is recorded (readers get it, not a later upload to the same key), uploaded_at
-- set and the audit row dispute.evidence_uploaded written, in one transaction. A mismatch is LLVL0
-- and changes nothing (the party may upload again while the presigned POST is valid).
-- Confirming again answers the evidence as it is, writing nothing. Ordered with the
-- dispute's resolution as dispute_evidence_add is (the escrow row, FOR SHARE, first).
CREATE OR REPLACE FUNCTION dispute_evidence_confirm(
  p_escrow uuid, p_evidence uuid, p_party uuid, p_size bigint, p_content_type text, p_sha256 text,
  p_version text, p_actor jsonb, p_audit jsonb
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  e escrows;
  d disputes;
  v dispute_evidence;
BEGIN
  SELECT * INTO e FROM escrows WHERE id = p_escrow FOR SHARE;
  IF FOUND THEN
    SELECT * INTO d FROM disputes WHERE escrow_id = e.id;
    SELECT * INTO v FROM dispute_evidence
     WHERE id = p_evidence AND dispute_id = d.id AND submitted_by = p_party FOR UPDATE;
  END IF;
  IF v.id IS NULL THEN
    RAISE EXCEPTION 'evidence % not found', p_evidence USING ERRCODE = 'LLNF0';
  END IF;
  IF v.object_key IS NULL THEN
    RAISE EXCEPTION 'evidence % is text: there is no upload to confirm', v.id USING ERRCODE = 'LLCF0';
  END IF;
  IF v.uploaded_at IS NOT NULL THEN
    RETURN dispute_evidence_json(v);
  END IF;
  IF e.status <> 'DISPUTED' OR d.status <> 'open' THEN
    RAISE EXCEPTION 'escrow % has no open dispute (it is %): evidence is taken only while its dispute is open',
      e.id, e.status USING ERRCODE = 'LLCF0';
  END IF;
  IF p_size IS NULL THEN
    RAISE EXCEPTION 'nothing has been uploaded for evidence % yet: POST the file with the upload form first', v.id
      USING ERRCODE = 'LLCF0';
  END IF;
  IF p_size <> v.size_bytes THEN
    RAISE EXCEPTION 'the uploaded document is % bytes; % were declared', p_size, v.size_bytes USING ERRCODE = 'LLVL0';
  END IF;
  IF p_content_type IS DISTINCT FROM v.content_type THEN
    RAISE EXCEPTION 'the uploaded document is of type %; % was declared', coalesce(p_content_type, 'none'),
      v.content_type USING ERRCODE = 'LLVL0';
  END IF;
  IF p_sha256 IS DISTINCT FROM v.sha256 THEN
    RAISE EXCEPTION 'the uploaded document''s SHA-256 is not the one declared' USING ERRCODE = 'LLVL0';
  END IF;
  IF p_version IS NULL OR btrim(p_version) = '' THEN
    RAISE EXCEPTION 'the stored version of evidence % is unknown', v.id USING ERRCODE = 'LLCF0';
  END IF;
  UPDATE dispute_evidence SET uploaded_at = clock_timestamp(), object_version = p_version
   WHERE id = v.id RETURNING * INTO v;
  PERFORM ledger_audit(p_actor => p_actor,
                       p_rows => jsonb_build_array(p_audit || jsonb_build_object(
                         'resource_type', 'dispute_evidence', 'after', dispute_evidence_json(v),
                         'metadata', jsonb_build_object('escrow_id', e.id, 'dispute_id', d.id),
                         'subjects', jsonb_build_array(e.buyer_id, e.seller_id))),
                       p_resource_id => v.id::text, p_before => NULL, p_after => NULL);
  RETURN dispute_evidence_json(v);
END $$;

REVOKE ALL ON FUNCTION dispute_evidence_confirm(uuid, uuid, uuid, bigint, text, text, text, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dispute_evidence_confirm(uuid, uuid, uuid, bigint, text, text, text, jsonb, jsonb)
  TO ledgerline_app;
