-- Dispute evidence (issue 17): a confirmed document is the object VERSION that was read
-- back and matched its declared size, type and SHA-256. The presigned POST stays valid
-- for a while after the confirmation and S3 cannot check the hash a form declares, so a
-- later upload to the same key could replace the current version with other bytes of the
-- same size and type; the bucket is versioned, and readers are given the confirmed
-- version, never "the latest".
ALTER TABLE dispute_evidence
  ADD COLUMN object_version text CHECK (length(object_version) BETWEEN 1 AND 1024),
  ADD CONSTRAINT dispute_evidence_version CHECK ((object_version IS NULL) = (uploaded_at IS NULL));

-- The confirmation routine takes the version it confirms (db/routines/dispute_evidence_confirm.sql
-- creates the new signature).
DROP FUNCTION IF EXISTS dispute_evidence_confirm(uuid, uuid, uuid, bigint, text, text, jsonb, jsonb);
