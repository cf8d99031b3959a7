-- POST /v1/escrows/{id}/dispute/evidence: record one piece of evidence from the buyer or
-- the seller of an escrow whose dispute is open, and its audit row
-- (dispute.evidence_submitted), in one transaction. A document is recorded as declared
-- (filename, type, size, SHA-256) under the object key the server chose; it counts as
-- uploaded only once dispute_evidence_confirm has matched the stored object against it.
--
-- The escrow row is locked FOR SHARE first, as escrow_transition locks it FOR UPDATE
-- first: evidence and the dispute's resolution are ordered, and no evidence is taken
-- after the decision. Anyone but the two parties gets "not found" (LLNF0), as for a
-- missing escrow; an escrow without an open dispute is a conflict (LLCF0), as is a
-- dispute that already holds MAX_ITEMS pieces (a bound on what one party can pile up).
CREATE OR REPLACE FUNCTION dispute_evidence_add(
  p_escrow uuid, p_evidence uuid, p_party uuid, p_body text, p_document jsonb, p_object_key text,
  p_actor jsonb, p_audit jsonb
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  c_max_items CONSTANT integer := 50;
  e escrows;
  d disputes;
  v dispute_evidence;
BEGIN
  SELECT * INTO e FROM escrows WHERE id = p_escrow FOR SHARE;
  IF NOT FOUND OR p_party IS NULL OR p_party NOT IN (e.buyer_id, e.seller_id) THEN
    RAISE EXCEPTION 'escrow % not found', p_escrow USING ERRCODE = 'LLNF0';
  END IF;
  SELECT * INTO d FROM disputes WHERE escrow_id = e.id;
  IF e.status <> 'DISPUTED' OR NOT FOUND OR d.status <> 'open' THEN
    RAISE EXCEPTION 'escrow % has no open dispute (it is %): evidence is taken only while its dispute is open',
      e.id, e.status USING ERRCODE = 'LLCF0';
  END IF;
  IF p_body IS NULL AND p_document IS NULL THEN
    RAISE EXCEPTION 'send text, a document, or both' USING ERRCODE = 'LLVL0';
  END IF;
  IF (p_document IS NULL) <> (p_object_key IS NULL) THEN
    RAISE EXCEPTION 'a document is stored under the key the server chose' USING ERRCODE = 'LLVL0';
  END IF;
  IF (SELECT count(*) FROM dispute_evidence WHERE dispute_id = d.id) >= c_max_items THEN
    RAISE EXCEPTION 'this dispute already holds % pieces of evidence', c_max_items USING ERRCODE = 'LLCF0';
  END IF;
  INSERT INTO dispute_evidence (id, dispute_id, submitted_by, body, filename, content_type, size_bytes, sha256,
                                object_key)
  VALUES (p_evidence, d.id, p_party, p_body, p_document->>'filename', p_document->>'content_type',
          (p_document->>'size')::bigint, p_document->>'sha256', p_object_key)
  RETURNING * INTO v;
  PERFORM ledger_audit(p_actor => p_actor,
                       p_rows => jsonb_build_array(p_audit || jsonb_build_object(
                         'resource_type', 'dispute_evidence', 'after', dispute_evidence_json(v),
                         'metadata', jsonb_build_object('escrow_id', e.id, 'dispute_id', d.id),
                         'subjects', jsonb_build_array(e.buyer_id, e.seller_id))),
                       p_resource_id => v.id::text, p_before => NULL, p_after => NULL);
  RETURN dispute_evidence_json(v);
END $$;

REVOKE ALL ON FUNCTION dispute_evidence_add(uuid, uuid, uuid, text, jsonb, text, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dispute_evidence_add(uuid, uuid, uuid, text, jsonb, text, jsonb, jsonb) TO ledgerline_app;
