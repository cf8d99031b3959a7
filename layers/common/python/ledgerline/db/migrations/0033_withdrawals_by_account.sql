-- The ledger check's account slices look up each account's withdrawals (the rule
-- withdrawal_hold_in_step: a withdrawal's hold in step with it), an index probe per account.
CREATE INDEX withdrawals_account ON withdrawals (account_id);
