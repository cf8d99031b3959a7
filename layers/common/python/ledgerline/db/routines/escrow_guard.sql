-- The escrow machine, enforced by the database for every writer, whatever its code: an
-- escrow is born AWAITING_PAYMENT, its status moves only along an edge listed in
-- escrow_transitions (the machine as data, migration 0021), what it is (parties,
-- currency, amount, account, invoice once set) never changes, and it reaches a terminal
-- status only with its own account closed, which ledger_set_account_status allows only
-- at zero: a settled escrow holds nothing and can never be paid into or out of again.
-- escrow_transition is the only writer; this is the net under it.
CREATE OR REPLACE FUNCTION escrow_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.status <> 'AWAITING_PAYMENT' THEN
      RAISE EXCEPTION 'escrow %: an escrow is opened AWAITING_PAYMENT, not %', NEW.id, NEW.status
        USING ERRCODE = 'LLST0';
    END IF;
    RETURN NEW;
  END IF;
  IF (NEW.id, NEW.buyer_id, NEW.seller_id, NEW.currency, NEW.amount, NEW.account_id, NEW.created_by, NEW.created_at)
     IS DISTINCT FROM
     (OLD.id, OLD.buyer_id, OLD.seller_id, OLD.currency, OLD.amount, OLD.account_id, OLD.created_by, OLD.created_at)
     OR (OLD.invoice_id IS NOT NULL AND NEW.invoice_id IS DISTINCT FROM OLD.invoice_id) THEN
    RAISE EXCEPTION 'escrow %: its parties, currency, amount, account and invoice never change', OLD.id
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status IS DISTINCT FROM OLD.status THEN
    IF NOT EXISTS (SELECT 1 FROM escrow_transitions t WHERE t.from_status = OLD.status AND t.to_status = NEW.status) THEN
      RAISE EXCEPTION 'escrow %: % -> % is not a transition of the escrow machine', OLD.id, OLD.status, NEW.status
        USING ERRCODE = 'LLST0';
    END IF;
    IF NEW.status IN ('RELEASED', 'REFUNDED', 'RESOLVED_RELEASED', 'RESOLVED_REFUNDED')
       AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = NEW.account_id AND a.status = 'closed') THEN
      RAISE EXCEPTION 'escrow %: % is terminal; its account % must be emptied and closed first', OLD.id, NEW.status,
        NEW.account_id USING ERRCODE = 'check_violation';
    END IF;
  ELSIF OLD.status IN ('RELEASED', 'REFUNDED', 'RESOLVED_RELEASED', 'RESOLVED_REFUNDED')
        AND (NEW.fee, NEW.funded_from, NEW.fund_transaction_id, NEW.settle_transaction_id, NEW.funded_at, NEW.settled_at)
            IS DISTINCT FROM
            (OLD.fee, OLD.funded_from, OLD.fund_transaction_id, OLD.settle_transaction_id, OLD.funded_at, OLD.settled_at)
  THEN
    RAISE EXCEPTION 'escrow % is %: a settled escrow never changes', OLD.id, OLD.status USING ERRCODE = 'LLST0';
  END IF;
  NEW.updated_at := clock_timestamp();
  RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER escrows_guard BEFORE INSERT OR UPDATE ON escrows
  FOR EACH ROW EXECUTE FUNCTION escrow_guard();

-- A trigger function: nobody calls it.
REVOKE ALL ON FUNCTION escrow_guard() FROM PUBLIC;
