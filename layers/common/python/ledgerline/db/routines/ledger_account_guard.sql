-- What an account is never changes; only its status, name and metadata do, and a closed
-- account stays closed. A status change is copied to the account's balance row: a
-- posting reads the status from the balance row it has just locked, so a freeze
-- committed while it waited is seen. Accounts are never deleted (forbid_mutation).
CREATE OR REPLACE FUNCTION ledger_account_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF (NEW.id, NEW.owner_id, NEW.kind, NEW.currency, NEW.may_go_negative, NEW.hot, NEW.created_at)
     IS DISTINCT FROM
     (OLD.id, OLD.owner_id, OLD.kind, OLD.currency, OLD.may_go_negative, OLD.hot, OLD.created_at) THEN
    RAISE EXCEPTION 'account %: id, owner, kind, currency, may_go_negative and hot never change', OLD.id
      USING ERRCODE = 'check_violation';
  END IF;
  IF OLD.status = 'closed' AND NEW.status <> 'closed' THEN
    RAISE EXCEPTION 'account % is closed; a closed account is never reopened', OLD.id
      USING ERRCODE = 'LLST0';
  END IF;
  IF NEW.status <> OLD.status THEN
    UPDATE balances SET status = NEW.status WHERE account_id = NEW.id;
  END IF;
  NEW.updated_at := now();
  RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER accounts_guard BEFORE UPDATE ON accounts
  FOR EACH ROW EXECUTE FUNCTION ledger_account_guard();
