-- A withdrawal keeps its hold until the payout answers (issue 19: "failures voided
-- individually"). Until now approval captured the hold into payout_clearing, and a failed
-- payout reversed that capture: the money came back, but through two postings, and the
-- hold read "posted" for money that never left. Now approval pins the hold (it no longer
-- expires: ledger_hold_pin), a paid payout captures it straight to external_funding (one
-- posting, the settlement) and a failed one voids it: nothing was ever posted.
--
-- Withdrawals approved before this migration were captured already; they settle as they
-- always did (clearing to external_funding, or a reversal of the capture). The
-- constraints allow both: a capture only once approved, a reversal only of a capture.
ALTER TABLE withdrawals
  DROP CONSTRAINT withdrawals_captured,
  DROP CONSTRAINT withdrawals_failed,
  ADD CONSTRAINT withdrawals_captured CHECK (capture_transaction_id IS NULL OR status IN ('approved', 'paid', 'failed')),
  ADD CONSTRAINT withdrawals_failed CHECK (
    reversal_transaction_id IS NULL OR (status = 'failed' AND capture_transaction_id IS NOT NULL)),
  ADD CONSTRAINT withdrawals_failed_capture_reversed CHECK (
    status <> 'failed' OR (capture_transaction_id IS NULL) = (reversal_transaction_id IS NULL));

-- Renamed: it approves a bulk payout's items (bulk_payout_approve_items), it no longer captures.
DROP FUNCTION IF EXISTS bulk_payout_capture(uuid, jsonb, text);
