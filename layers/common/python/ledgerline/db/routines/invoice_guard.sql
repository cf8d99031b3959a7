-- The invoice machine and its money, enforced by the database for every writer (the
-- application role writes the non-money changes itself, through column grants):
--
-- * the amount is derived here, on every write, as Σ quantity × unit_price of the items,
--   exactly (numeric); a line whose total has more decimals than the currency's minor
--   units is refused, never rounded (ledgerline.invoices.pricing says it first, with
--   field errors; this is the net under it);
-- * an invoice is born PENDING; its status moves only PENDING -> PAID | CANCELLED |
--   OVERDUE, OVERDUE -> PAID | CANCELLED; PAID and CANCELLED are final (nothing changes);
-- * its number, seller and creation never change; its buyer, currency, items and due date
--   only while PENDING;
-- * version and updated_at move on every change; paid_at is set when it becomes PAID.
-- PAID needs escrow_id (invoices_paid), which only invoice_pay can write.
CREATE OR REPLACE FUNCTION invoice_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_units smallint;
  v_total numeric := 0;
  v_line  numeric;
  v_n     integer := 0;
  it      jsonb;
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF OLD.status IN ('PAID', 'CANCELLED') THEN
      RAISE EXCEPTION 'invoice % is %: it never changes again', OLD.number, OLD.status USING ERRCODE = 'LLST0';
    END IF;
    IF (NEW.id, NEW.number, NEW.seller_id, NEW.created_at) IS DISTINCT FROM (OLD.id, OLD.number, OLD.seller_id, OLD.created_at) THEN
      RAISE EXCEPTION 'invoice %: its number, seller and creation never change', OLD.number USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.status <> 'PENDING' AND (NEW.buyer_id, NEW.currency, NEW.items, NEW.due_date)
                                   IS DISTINCT FROM (OLD.buyer_id, OLD.currency, OLD.items, OLD.due_date) THEN
      RAISE EXCEPTION 'invoice % is %: only a PENDING invoice can be changed', OLD.number, OLD.status
        USING ERRCODE = 'LLST0';
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status
       AND (OLD.status, NEW.status) NOT IN (('PENDING', 'PAID'), ('PENDING', 'CANCELLED'), ('PENDING', 'OVERDUE'),
                                            ('OVERDUE', 'PAID'), ('OVERDUE', 'CANCELLED')) THEN
      RAISE EXCEPTION 'invoice %: % -> % is not a transition of the invoice machine', OLD.number, OLD.status, NEW.status
        USING ERRCODE = 'LLST0';
    END IF;
    NEW.version := OLD.version + 1;
    NEW.updated_at := clock_timestamp();
    IF NEW.status = 'PAID' THEN
      NEW.paid_at := clock_timestamp();
    END IF;
  ELSE
    IF NEW.status <> 'PENDING' OR NEW.escrow_id IS NOT NULL OR NEW.deleted_at IS NOT NULL OR NEW.paid_at IS NOT NULL THEN
      RAISE EXCEPTION 'an invoice is created PENDING, unpaid' USING ERRCODE = 'LLST0';
    END IF;
    NEW.version := 1;
  END IF;

  SELECT c.minor_units INTO v_units FROM currencies c WHERE c.code = NEW.currency;
  FOR it IN SELECT e FROM jsonb_array_elements(NEW.items) e LOOP
    v_n := v_n + 1;
    IF jsonb_typeof(it) <> 'object' OR length(btrim(coalesce(it->>'description', ''))) NOT BETWEEN 1 AND 500
       OR coalesce(it->>'quantity', '') !~ '^(0|[1-9][0-9]{0,8})(\.[0-9]{1,4})?$'
       OR coalesce(it->>'unit_price', '') !~ '^(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?$'
       OR (it->>'quantity')::numeric = 0 THEN
      RAISE EXCEPTION 'invoice item % is not {description, quantity > 0, unit_price} as decimal text', v_n
        USING ERRCODE = 'LLVL0';
    END IF;
    v_line := (it->>'quantity')::numeric * (it->>'unit_price')::numeric;
    IF v_line <> round(v_line, v_units) THEN
      RAISE EXCEPTION 'invoice item %: its total % has more decimals than % allows (%)', v_n, v_line, NEW.currency, v_units
        USING ERRCODE = 'LLVL0';
    END IF;
    v_total := v_total + v_line;
  END LOOP;
  IF v_total <= 0 OR v_total >= 1e15 THEN
    RAISE EXCEPTION 'an invoice amounts to more than zero and less than 10^15' USING ERRCODE = 'LLVL0';
  END IF;
  NEW.amount := v_total;
  RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER invoices_guard BEFORE INSERT OR UPDATE ON invoices
  FOR EACH ROW EXECUTE FUNCTION invoice_guard();

-- A trigger function: nobody calls it.
REVOKE ALL ON FUNCTION invoice_guard() FROM PUBLIC;
