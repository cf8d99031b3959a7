-- Refusals never describe an account the caller does not own (security finding: errors
-- described other users' accounts).
--
-- Before: a transfer to someone else's USD wallet in NGN answered "account <id> holds USD,
-- not NGN" (422), to their frozen wallet "account <id> is frozen; it cannot send or receive
-- money" (409), and to a system account "account <id> not found (it cannot receive this
-- kind of transaction)": the currency and status of another user's account, and that
-- system accounts exist, were readable by anyone who knew (or guessed) an id.
--
-- Now, when ledger_post_legs runs for an owner (p_owner: a user moving their own money):
--   * a credited account p_owner does not own that cannot take the money, for whatever
--     reason (another currency, frozen, closed), is one answer: SQLSTATE LLCF0 (409
--     conflict) "account <id> cannot receive this transfer";
--   * an account of a kind the caller may not credit (p_credit_kinds) is word for word a
--     missing account: LLNF0 "account <id> not found".
-- The caller's own accounts keep their detailed messages (currency, frozen, available
-- funds), and so do administrative postings (p_owner NULL: adjustments, reversals).
-- Only the error branches change: the success path runs the same statements (no query
-- is added; one test of a local variable after the checks).
--
-- ledger_hold_capture called ledger_post_legs without an owner, so capturing a hold to
-- someone else's account leaked the same way; it now passes p_owner through (the hold's
-- own account, the debited one, is already checked to belong to p_owner).
--
-- CREATE OR REPLACE keeps the functions' owner and grants, but replaces their SET
-- clauses: ledger_post_legs restates plan_cache_mode = force_generic_plan (0007's ALTER
-- FUNCTION) next to its search_path. Both stay SECURITY DEFINER. The grants are restated
-- at the end all the same (no-ops if unchanged).
--
-- A 4xx stored under an idempotency key before this migration is still replayed for that
-- key (up to its 24 h expiry) with the old wording.

-- p_owner (optional): every debited account must belong to this user (else "not found"),
--   and a credited account it does not own is refused without saying why (see above).
-- p_credit_kinds (optional): every credited account must be of one of these kinds (else
--   "not found", exactly as if it did not exist).
CREATE OR REPLACE FUNCTION ledger_post_legs(
  p_kind          text,
  p_accounts      uuid[],
  p_currencies    text[],
  p_amounts       numeric[],
  p_entry_types   text[],
  p_counterparts  uuid[],
  p_actor         jsonb,
  p_audit         jsonb DEFAULT NULL,
  p_description   text DEFAULT NULL,
  p_reference     text DEFAULT NULL,
  p_metadata      jsonb DEFAULT NULL,
  p_reverses      uuid DEFAULT NULL,
  p_allow_frozen  boolean DEFAULT false,
  p_owner         uuid DEFAULT NULL,
  p_credit_kinds  text[] DEFAULT NULL,
  p_id            uuid DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  v_id      uuid := coalesce(p_id, gen_random_uuid());
  v_n       integer := coalesce(array_length(p_accounts, 1), 0);
  v_created timestamptz;
  v_before  jsonb := '{}'::jsonb;
  v_after   jsonb := '{}'::jsonb;
  v_entries jsonb;
  v_refused uuid;  -- the (least) credited account p_owner does not own that cannot take it
  r         record;
BEGIN
  IF v_n < 2 THEN
    RAISE EXCEPTION 'a transaction needs at least two legs' USING ERRCODE = 'LLVL0';
  END IF;
  IF coalesce(array_length(p_currencies, 1), 0) <> v_n OR coalesce(array_length(p_amounts, 1), 0) <> v_n
     OR coalesce(array_length(p_entry_types, 1), 0) <> v_n OR coalesce(array_length(p_counterparts, 1), 0) <> v_n THEN
    RAISE EXCEPTION 'every leg needs an account, currency, amount, entry type and counterpart (or null)'
      USING ERRCODE = 'LLVL0';
  END IF;

  -- One statement locks the non-hot balances (in account-id order) and reads everything
  -- to check. The locked rows are read as they are once locked, status included.
  FOR r IN
    WITH locked AS MATERIALIZED (
      SELECT b.account_id, b.posted, b.held, b.status FROM balances b
       WHERE b.account_id = ANY (p_accounts) AND NOT b.hot
       ORDER BY b.account_id FOR UPDATE
    )
    SELECT l.account_id, l.currency AS leg_currency, l.currency_max AS leg_currency_max, l.net, l.debited,
           a.id IS NOT NULL AS found, a.currency, coalesce(k.status, a.status) AS status, a.kind, a.owner_id,
           a.hot, a.may_go_negative, coalesce(k.posted, hb.posted) AS posted, coalesce(k.held, hb.held) AS held
      FROM (SELECT u.account_id, min(u.currency) AS currency, max(u.currency) AS currency_max,
                   sum(u.amount) AS net, bool_or(u.amount < 0) AS debited
              FROM unnest(p_accounts, p_currencies, p_amounts) AS u(account_id, currency, amount)
             GROUP BY u.account_id) l
      LEFT JOIN accounts a ON a.id = l.account_id
      LEFT JOIN locked k ON k.account_id = l.account_id
      LEFT JOIN balances hb ON hb.account_id = l.account_id AND hb.hot
  LOOP
    IF NOT r.found OR (p_owner IS NOT NULL AND r.debited AND r.owner_id IS DISTINCT FROM p_owner) THEN
      RAISE EXCEPTION 'account % not found', r.account_id USING ERRCODE = 'LLNF0';
    END IF;
    -- Exactly the words of a missing account: a kind the caller may not pay is not there.
    IF p_credit_kinds IS NOT NULL AND NOT r.debited AND NOT (r.kind = ANY (p_credit_kinds)) THEN
      RAISE EXCEPTION 'account % not found', r.account_id USING ERRCODE = 'LLNF0';
    END IF;
    -- From here on an account p_owner does not own is credited only (a debited one was
    -- "not found" above): whatever stops it, it only "cannot receive this transfer",
    -- raised after the loop, so the caller's own accounts' refusals come first whatever
    -- order the rows arrive in (the answer does not depend on the accounts' ids).
    IF r.leg_currency <> r.currency OR r.leg_currency_max <> r.currency THEN
      IF p_owner IS NOT NULL AND r.owner_id IS DISTINCT FROM p_owner THEN
        v_refused := least(v_refused, r.account_id);
        CONTINUE;
      END IF;
      RAISE EXCEPTION 'account % holds %, not %', r.account_id, r.currency, r.leg_currency USING ERRCODE = 'LLVL0';
    END IF;
    IF r.status = 'closed' OR (r.status = 'frozen' AND NOT p_allow_frozen) THEN
      IF p_owner IS NOT NULL AND r.owner_id IS DISTINCT FROM p_owner THEN
        v_refused := least(v_refused, r.account_id);
        CONTINUE;
      END IF;
      RAISE EXCEPTION 'account % is %; it cannot send or receive money', r.account_id, r.status
        USING ERRCODE = 'LLCF0';
    END IF;
    IF NOT r.may_go_negative AND r.posted - r.held + r.net < 0 THEN
      -- (Not reachable for a credit-only account; never say a foreign balance anyway.)
      IF p_owner IS NOT NULL AND r.owner_id IS DISTINCT FROM p_owner THEN
        v_refused := least(v_refused, r.account_id);
        CONTINUE;
      END IF;
      RAISE EXCEPTION 'account % has % % available; this needs %', r.account_id, r.posted - r.held, r.currency, -r.net
        USING ERRCODE = 'LLIF0';
    END IF;
    IF NOT r.hot THEN
      v_before := v_before || jsonb_build_object(r.account_id::text, r.posted);
      v_after := v_after || jsonb_build_object(r.account_id::text, r.posted + r.net);
    END IF;
  END LOOP;
  IF v_refused IS NOT NULL THEN
    RAISE EXCEPTION 'account % cannot receive this transfer', v_refused USING ERRCODE = 'LLCF0';
  END IF;

  INSERT INTO transactions (id, kind, description, reference, metadata, actor_id, actor_type, reverses)
  VALUES (v_id, p_kind, p_description, p_reference, coalesce(p_metadata, '{}'::jsonb),
          (p_actor->>'id')::uuid, coalesce(p_actor->>'type', 'system'), p_reverses)
  RETURNING created_at INTO v_created;

  -- Credits first: an account both debited and credited here never dips on the way.
  WITH written AS (
    INSERT INTO entries (transaction_id, account_id, currency, amount, entry_type, counterpart_id)
    SELECT v_id, u.account_id, u.currency, u.amount, coalesce(u.entry_type, p_kind), u.counterpart_id
      FROM unnest(p_accounts, p_currencies, p_amounts, p_entry_types, p_counterparts)
           WITH ORDINALITY AS u(account_id, currency, amount, entry_type, counterpart_id, ord)
     ORDER BY u.amount DESC, u.ord
    RETURNING id, account_id, currency, amount, entry_type, counterpart_id, balance_after, created_at
  )
  SELECT jsonb_agg(jsonb_build_object(
           'id', w.id, 'account_id', w.account_id, 'currency', w.currency, 'amount', w.amount,
           'entry_type', w.entry_type, 'counterpart_id', w.counterpart_id,
           'balance_after', w.balance_after, 'created_at', w.created_at) ORDER BY w.created_at)
    INTO v_entries FROM written w;

  IF p_audit IS NOT NULL THEN
    PERFORM ledger_audit(p_actor, p_audit, v_id::text,
                         jsonb_build_object('balances', v_before),
                         jsonb_build_object('transaction_id', v_id, 'kind', p_kind, 'entries', v_entries,
                                            'balances', v_after));
  END IF;

  RETURN jsonb_build_object('id', v_id, 'kind', p_kind, 'status', 'posted', 'description', p_description,
                            'reference', p_reference, 'metadata', coalesce(p_metadata, '{}'::jsonb),
                            'reverses', p_reverses, 'actor_id', p_actor->>'id', 'created_at', v_created,
                            'entries', v_entries);
END $$;

-- Capture (post) an active hold, in full or in part, to another account. The remainder
-- is released: a hold is captured once. The posting runs for p_owner, so a foreign
-- destination gets the same answers as a transfer to it.
CREATE OR REPLACE FUNCTION ledger_hold_capture(
  p_hold         uuid,
  p_to           uuid,
  p_amount       numeric,
  p_actor        jsonb,
  p_audit        jsonb DEFAULT NULL,
  p_owner        uuid DEFAULT NULL,
  p_credit_kinds text[] DEFAULT NULL,
  p_description  text DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  h      holds;
  v_amt  numeric;
  v_txn  uuid := gen_random_uuid();
  v_post jsonb;
  v_before jsonb;
BEGIN
  SELECT * INTO h FROM holds WHERE id = p_hold FOR UPDATE;
  IF NOT FOUND OR (p_owner IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM accounts WHERE id = h.account_id AND owner_id = p_owner)) THEN
    RAISE EXCEPTION 'hold % not found', p_hold USING ERRCODE = 'LLNF0';
  END IF;
  IF h.status <> 'active' THEN
    RAISE EXCEPTION 'hold % is %; only an active hold can be captured', p_hold, h.status USING ERRCODE = 'LLST0';
  END IF;
  IF clock_timestamp() >= h.expires_at THEN
    RAISE EXCEPTION 'hold % expired at %; it can no longer be captured', p_hold, h.expires_at USING ERRCODE = 'LLST0';
  END IF;
  v_amt := coalesce(p_amount, h.amount);
  IF v_amt <= 0 OR v_amt > h.amount THEN
    RAISE EXCEPTION 'capture amount % must be more than zero and at most the held %', v_amt, h.amount
      USING ERRCODE = 'LLVL0';
  END IF;
  IF p_to = h.account_id THEN
    RAISE EXCEPTION 'a hold is captured to another account; void it to release it' USING ERRCODE = 'LLVL0';
  END IF;
  -- Both balances in account-id order before touching either (the release below would
  -- otherwise lock the hold's account first).
  PERFORM 1 FROM balances b WHERE b.account_id IN (h.account_id, p_to) AND NOT b.hot
    ORDER BY b.account_id FOR UPDATE;
  v_before := ledger_hold_json(h);
  UPDATE holds SET status = 'posted', captured_amount = v_amt, transaction_id = v_txn, resolved_at = clock_timestamp()
   WHERE id = p_hold RETURNING * INTO h;
  v_post := ledger_post_legs(
    'hold_capture', ARRAY[h.account_id, p_to], ARRAY[h.currency, h.currency], ARRAY[-v_amt, v_amt],
    ARRAY['hold_capture', 'hold_capture'], ARRAY[p_to, h.account_id], p_actor, NULL,
    coalesce(p_description, h.description), NULL, jsonb_build_object('hold_id', h.id), NULL, false, p_owner,
    p_credit_kinds, v_txn);
  IF p_audit IS NOT NULL THEN
    PERFORM ledger_audit(p_actor, p_audit, h.id::text, jsonb_build_object('hold', v_before),
                         jsonb_build_object('hold', ledger_hold_json(h), 'transaction', v_post));
  END IF;
  RETURN ledger_hold_json(h) || jsonb_build_object('transaction', v_post);
END $$;

REVOKE ALL ON FUNCTION
  ledger_post_legs(text, uuid[], text[], numeric[], text[], uuid[], jsonb, jsonb, text, text, jsonb, uuid, boolean,
                   uuid, text[], uuid),
  ledger_hold_capture(uuid, uuid, numeric, jsonb, jsonb, uuid, text[], text)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  ledger_post_legs(text, uuid[], text[], numeric[], text[], uuid[], jsonb, jsonb, text, text, jsonb, uuid, boolean,
                   uuid, text[], uuid),
  ledger_hold_capture(uuid, uuid, numeric, jsonb, jsonb, uuid, text[], text)
TO ledgerline_app;
