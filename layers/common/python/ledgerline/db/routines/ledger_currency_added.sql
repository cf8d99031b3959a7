-- A currency added by a later migration gets its system accounts at once.
CREATE OR REPLACE FUNCTION ledger_currency_added() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM ledger_create_system_accounts(NEW.code);
  RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER currencies_system_accounts AFTER INSERT ON currencies
  FOR EACH ROW EXECUTE FUNCTION ledger_currency_added();
