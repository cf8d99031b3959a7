-- One of each per currency, hot (appended to, never locked) and allowed to go negative:
-- external_funding goes negative as money enters the ledger, payout_clearing holds what
-- is on its way out (withdrawals approved before schema 32 only: a newer one's money stays
-- held on its wallet until paid), fees_revenue collects fees, adjustments balances manual
-- corrections.
-- Run for every currency by 0003_ledger.sql, and for a new one by ledger_currency_added.
CREATE OR REPLACE FUNCTION ledger_create_system_accounts(p_currency text) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO accounts (kind, currency, may_go_negative, hot, name)
  SELECT k.kind, p_currency, true, true, k.label || ' (' || p_currency || ')'
    FROM (VALUES ('external_funding', 'External funding'), ('fees_revenue', 'Fees revenue'),
                 ('payout_clearing', 'Payout clearing'), ('adjustments', 'Adjustments')) AS k(kind, label)
  ON CONFLICT DO NOTHING;
$$;

-- Nobody may call it but its owner (and the owner's SECURITY DEFINER functions).
REVOKE ALL ON FUNCTION ledger_create_system_accounts(text) FROM PUBLIC;
