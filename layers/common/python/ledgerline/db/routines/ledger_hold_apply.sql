-- Invariant 7: an active hold counts in its balance's ``held``; it resolves once, to
-- exactly one of posted / voided / expired, which releases it. Nothing else changes,
-- except that an active hold not yet due may be pinned, once: its expiry lifted to
-- 'infinity', so only a capture or a void ends it (a withdrawal's hold, from its approval
-- to the payout's answer: ledger_hold_pin).
-- Holds are placed on non-hot accounts only (a hot balance has no holds).
--
-- A balance's version counts the entries that moved it (each entry records the version it
-- made); a hold changes ``held`` only, so it does not bump it.
CREATE OR REPLACE FUNCTION ledger_hold_apply() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.status <> 'active' OR NEW.resolved_at IS NOT NULL THEN
      RAISE EXCEPTION 'a hold starts active' USING ERRCODE = 'check_violation';
    END IF;
    UPDATE balances b SET held = b.held + NEW.amount WHERE b.account_id = NEW.account_id AND NOT b.hot;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'holds are placed on wallet accounts only (account %)', NEW.account_id
        USING ERRCODE = 'LLVL0';
    END IF;
    RETURN NEW;
  END IF;

  IF OLD.status <> 'active' THEN
    RAISE EXCEPTION 'hold % is already %; a hold is resolved once', OLD.id, OLD.status USING ERRCODE = 'LLST0';
  END IF;
  IF NEW.status = 'active' AND isfinite(OLD.expires_at) AND OLD.expires_at > clock_timestamp()
     AND NEW.expires_at = 'infinity'
     AND (to_jsonb(NEW) - 'expires_at') = (to_jsonb(OLD) - 'expires_at') THEN
    RETURN NEW;  -- pinned (ledger_hold_pin): it is still held, and now ends only by a resolution
  END IF;
  IF (NEW.id, NEW.account_id, NEW.currency, NEW.amount, NEW.expires_at, NEW.created_at, NEW.actor_id)
     IS DISTINCT FROM
     (OLD.id, OLD.account_id, OLD.currency, OLD.amount, OLD.expires_at, OLD.created_at, OLD.actor_id) THEN
    RAISE EXCEPTION 'hold %: only its resolution may change', OLD.id USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status = 'active' THEN
    RAISE EXCEPTION 'hold %: an update must resolve it (posted, voided or expired)', OLD.id
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status = 'expired' AND NOT isfinite(OLD.expires_at) THEN
    RAISE EXCEPTION 'hold % is pinned; it ends only when it is captured or voided', OLD.id USING ERRCODE = 'LLST0';
  END IF;
  IF NEW.status = 'posted' AND clock_timestamp() >= OLD.expires_at THEN
    RAISE EXCEPTION 'hold % expired at %; it can no longer be captured', OLD.id, OLD.expires_at
      USING ERRCODE = 'LLST0';
  END IF;
  UPDATE balances b SET held = b.held - OLD.amount WHERE b.account_id = OLD.account_id;
  RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER holds_apply BEFORE INSERT OR UPDATE ON holds
  FOR EACH ROW EXECUTE FUNCTION ledger_hold_apply();
