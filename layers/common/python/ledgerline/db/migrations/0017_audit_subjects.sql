-- Subject users of an audit row (issue 15, the activity feed): whose event it is besides
-- its actor's. A credit to a wallet is done by a gateway, the system or another user, not
-- by the wallet's owner; the feed (GET /v1/activity) finds a user's events as
--   actor_id = me OR subject_ids @> ARRAY[me]
-- with the actor index and this GIN index.
--
-- A constant default adds the column without rewriting the table or touching a row, so
-- the append-only guard (forbid_mutation) is not involved. Rows written before this
-- migration keep '{}': their actor still finds them, a subject of an older row does not
-- (a backfill would be an UPDATE, which audit_log refuses to everyone, as it should).
--
-- Writers: ledgerline.audit.record (its ``subjects`` argument) and ledger_audit (an
-- optional "subjects" array per row, plus the owners of every account a posting touched).
ALTER TABLE audit_log ADD COLUMN subject_ids uuid[] NOT NULL DEFAULT '{}';

CREATE INDEX audit_log_subjects ON audit_log USING gin (subject_ids);
