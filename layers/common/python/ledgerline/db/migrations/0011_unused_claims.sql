-- The idempotency functions nothing calls any more (issue 13).
--
-- money_call claims a key with its own INSERT ... ON CONFLICT in the same statement as
-- the money, so idempotency_claim, idempotency_claim_fresh and the idempotency_take they
-- shared have had no caller since 0010. Their files in db/routines/ are deleted with
-- this migration.
DROP FUNCTION idempotency_claim(text, uuid, text, integer);
DROP FUNCTION idempotency_claim_fresh(text, uuid, text, integer);
DROP FUNCTION idempotency_take(text, uuid, text, integer);
