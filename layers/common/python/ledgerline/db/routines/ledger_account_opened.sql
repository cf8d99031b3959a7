-- Every account gets its cached balance row (invariant 5) in the transaction that opens
-- it, with the columns the balance's own CHECKs need (currency, hot, may_go_negative)
-- and its status.
CREATE OR REPLACE FUNCTION ledger_account_opened() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  INSERT INTO balances (account_id, currency, hot, may_go_negative, status)
  VALUES (NEW.id, NEW.currency, NEW.hot, NEW.may_go_negative, NEW.status);
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER accounts_balance AFTER INSERT ON accounts
  FOR EACH ROW EXECUTE FUNCTION ledger_account_opened();
