-- Bulk payouts (issue 19, part P): payroll-style, a merchant's wallet paid out to many of
-- its payout accounts in one request. Each item is a withdrawal (withdrawals.bulk_payout_id,
-- bulk_index) with its own hold, placed in the request's one statement; its payout, its
-- webhook and its settlement are the withdrawal's (issue 14), so a failed item returns
-- its own money while the others are paid.
--
-- Approval (ASVS 2.3.5, the two-person rule for large totals): approvals_required is 0, 1
-- or 2 by the total (settings); the requester never approves their own, and one
-- administrator counts once (the primary key of bulk_payout_approvals). At the last
-- approval every item is approved at once (bulk_payout_capture). Items are decided only
-- with their bulk payout, never one by one (withdrawal_approve and _reject refuse them).

CREATE TABLE bulk_payouts (
  id                  uuid PRIMARY KEY,
  user_id             uuid NOT NULL REFERENCES users (id),
  account_id          uuid NOT NULL REFERENCES accounts (id),
  currency            text NOT NULL REFERENCES currencies (code),
  total               numeric(19,4) NOT NULL CHECK (total > 0),
  item_count          integer NOT NULL CHECK (item_count BETWEEN 1 AND 1000),
  approvals_required  smallint NOT NULL CHECK (approvals_required BETWEEN 0 AND 2),
  status              text NOT NULL CHECK (status IN ('pending_approval', 'approved', 'rejected')),
  reason              text CHECK (length(reason) <= 500),  -- why rejected
  created_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
  decided_at          timestamptz,
  CONSTRAINT bulk_payouts_decided CHECK ((status = 'pending_approval') = (decided_at IS NULL))
);
CREATE INDEX bulk_payouts_user ON bulk_payouts (user_id, created_at DESC);
CREATE INDEX bulk_payouts_pending ON bulk_payouts (created_at) WHERE status = 'pending_approval';

CREATE TABLE bulk_payout_approvals (
  bulk_payout_id  uuid NOT NULL REFERENCES bulk_payouts (id),
  admin_id        uuid NOT NULL REFERENCES users (id),
  approved_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (bulk_payout_id, admin_id)
);

ALTER TABLE withdrawals ADD COLUMN bulk_payout_id uuid REFERENCES bulk_payouts (id);
ALTER TABLE withdrawals ADD COLUMN bulk_index integer CHECK (bulk_index >= 0);
-- What the payee's bank statement says (a bulk item's narration; the payout worker's default otherwise).
ALTER TABLE withdrawals ADD COLUMN narration text CHECK (length(narration) BETWEEN 1 AND 100);
ALTER TABLE withdrawals ADD CONSTRAINT withdrawals_bulk_item CHECK ((bulk_payout_id IS NULL) = (bulk_index IS NULL));
CREATE UNIQUE INDEX withdrawals_bulk ON withdrawals (bulk_payout_id, bulk_index) WHERE bulk_payout_id IS NOT NULL;

-- Reads only; every change goes through the bulk_payout_* routines.
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON bulk_payouts, bulk_payout_approvals FROM ledgerline_app;
GRANT SELECT ON bulk_payouts, bulk_payout_approvals TO ledgerline_app;
