-- Post one balanced transaction of any number of legs, or say why not: lock the non-hot
-- balances it touches in account-id order (so concurrent postings over the same accounts
-- queue instead of deadlocking; hot ones are appended to, never locked), check every
-- account and the available funds, then write the transaction, its entries (each with
-- the balance and version it produces) and at most one audit row.
-- Returns {"refusal": <problem>} or {"transaction": {...}}: a refusal is returned, not
-- raised, so money_call stores and answers it in the same statement (no EXCEPTION block
-- or savepoint on the way). ledger_post_legs is the raising form.
--
-- p_owner: every debited account must be this user's (else "not found"); a credited one
--   it does not own that cannot take the money only "cannot receive this transfer".
-- p_credit_kinds: every credited account must be of one of these kinds (else "not found").
-- p_capture: {"hold": id, "amount": n}: a hold of the debited account, captured by this
--   posting (its amount is no longer held: the check counts it as available).
-- p_audit: one audit row spec ({"action", "category", "resource_type"?, "resource_id"?,
--   "before"?, "after"?, "metadata"?}); it gets the balances before/after and the entries.
--
-- Refusals never describe an account the caller does not own: to another user's
-- account, "holds USD, not NGN" or "is frozen" would tell its currency and status, and a
-- system account's "cannot receive this kind of transaction" that it exists, to anyone
-- who knew (or guessed) an id. So for p_owner, a credited account p_owner does not own
-- that cannot take the money, for whatever reason, is one answer (conflict, "cannot
-- receive this transfer"), and a kind the caller may not credit is word for word a
-- missing account. The caller's own accounts keep their detailed messages, and so do
-- administrative postings (p_owner NULL: adjustments, reversals).
--
-- plan_cache_mode: under concurrent load PostgreSQL kept choosing a custom plan for the
-- lock-and-check query and so planned it again on every call (perf showed 14-16% of the
-- server's CPU in BuildCachedPlan at 8 clients). Its generic plan (index probes on the
-- legs' accounts) is the right one for any input, so the function always uses it.
CREATE OR REPLACE FUNCTION ledger_post(
  p_kind text, p_accounts uuid[], p_currencies text[], p_amounts numeric[], p_actor jsonb,
  p_entry_types text[] DEFAULT NULL, p_counterparts uuid[] DEFAULT NULL, p_audit jsonb DEFAULT NULL,
  p_description text DEFAULT NULL, p_reference text DEFAULT NULL, p_metadata jsonb DEFAULT NULL,
  p_reverses uuid DEFAULT NULL, p_allow_frozen boolean DEFAULT false, p_owner uuid DEFAULT NULL,
  p_credit_kinds text[] DEFAULT NULL, p_id uuid DEFAULT NULL, p_capture jsonb DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  v_id       uuid := coalesce(p_id, gen_random_uuid());
  v_n        integer := coalesce(array_length(p_accounts, 1), 0);
  v_types    text[] := coalesce(p_entry_types, array_fill(p_kind, ARRAY[v_n]));
  v_counter  uuid[] := p_counterparts;
  v_release  numeric := coalesce((p_capture->>'amount')::numeric, 0);
  v_created  timestamptz;
  v_before   jsonb := '{}'::jsonb;
  v_after    jsonb := '{}'::jsonb;
  v_entries  jsonb;
  v_refused  uuid;
  v_ids      uuid[] := '{}';
  v_posted   numeric[] := '{}';
  v_versions bigint[] := '{}';
  r          record;
BEGIN
  IF v_n < 2 OR coalesce(array_length(p_currencies, 1), 0) <> v_n OR coalesce(array_length(p_amounts, 1), 0) <> v_n
     OR coalesce(array_length(v_types, 1), 0) <> v_n THEN
    RAISE EXCEPTION 'a transaction needs at least two legs, each with an account, currency and amount'
      USING ERRCODE = 'LLVL0';
  END IF;
  IF v_counter IS NULL THEN  -- two legs name each other; more have no one counterpart
    v_counter := CASE WHEN v_n = 2 THEN ARRAY[p_accounts[2], p_accounts[1]] ELSE array_fill(NULL::uuid, ARRAY[v_n]) END;
  END IF;

  -- One statement locks the non-hot balances (in account-id order) and reads all there is
  -- to check, status included, as the rows are once locked.
  FOR r IN
    WITH locked AS MATERIALIZED (
      SELECT b.account_id, b.posted, b.held, b.status, b.version FROM balances b
       WHERE b.account_id = ANY (p_accounts) AND NOT b.hot
       ORDER BY b.account_id FOR UPDATE
    )
    SELECT l.account_id, l.currency AS leg_currency, l.currency_max AS leg_currency_max, l.net, l.debited,
           a.id IS NOT NULL AS found, a.currency, coalesce(k.status, a.status) AS status, a.kind, a.owner_id,
           a.hot, a.may_go_negative, coalesce(k.posted, hb.posted) AS posted, coalesce(k.held, hb.held) AS held,
           k.version
      FROM (SELECT u.account_id, min(u.currency) AS currency, max(u.currency) AS currency_max,
                   sum(u.amount) AS net, bool_or(u.amount < 0) AS debited
              FROM unnest(p_accounts, p_currencies, p_amounts) AS u(account_id, currency, amount)
             GROUP BY u.account_id) l
      LEFT JOIN accounts a ON a.id = l.account_id
      LEFT JOIN locked k ON k.account_id = l.account_id
      LEFT JOIN balances hb ON hb.account_id = l.account_id AND hb.hot
     ORDER BY l.account_id
  LOOP
    IF NOT r.found OR (p_owner IS NOT NULL AND r.debited AND r.owner_id IS DISTINCT FROM p_owner)
       OR (p_credit_kinds IS NOT NULL AND NOT r.debited AND NOT (r.kind = ANY (p_credit_kinds))) THEN
      -- A kind the caller may not pay is word for word a missing account.
      RETURN jsonb_build_object('refusal', api_problem('not_found', format('account %s not found', r.account_id)));
    END IF;
    -- An account p_owner does not own is only credited here (a debited one was "not found"):
    -- whatever stops it, it "cannot receive this transfer", said after the loop, so the
    -- caller's own accounts' refusals come first whatever the accounts' ids.
    IF r.leg_currency <> r.currency OR r.leg_currency_max <> r.currency THEN
      IF p_owner IS NOT NULL AND r.owner_id IS DISTINCT FROM p_owner THEN
        v_refused := least(v_refused, r.account_id);
        CONTINUE;
      END IF;
      RETURN jsonb_build_object('refusal', api_problem('validation_error',
        format('account %s holds %s, not %s', r.account_id, r.currency, r.leg_currency)));
    END IF;
    IF r.status = 'closed' OR (r.status = 'frozen' AND NOT p_allow_frozen) THEN
      IF p_owner IS NOT NULL AND r.owner_id IS DISTINCT FROM p_owner THEN
        v_refused := least(v_refused, r.account_id);
        CONTINUE;
      END IF;
      RETURN jsonb_build_object('refusal', api_problem('conflict',
        format('account %s is %s; it cannot send or receive money', r.account_id, r.status)));
    END IF;
    IF NOT r.may_go_negative
       AND (r.posted - r.held + r.net + (CASE WHEN r.debited THEN v_release ELSE 0 END)) < 0 THEN
      IF p_owner IS NOT NULL AND r.owner_id IS DISTINCT FROM p_owner THEN
        v_refused := least(v_refused, r.account_id);
        CONTINUE;
      END IF;
      RETURN jsonb_build_object('refusal', api_problem('insufficient_funds',
        format('account %s has %s %s available; this needs %s',
               r.account_id, r.posted - r.held + CASE WHEN r.debited THEN v_release ELSE 0 END, r.currency, -r.net)));
    END IF;
    IF NOT r.hot THEN
      v_ids := v_ids || r.account_id;
      v_posted := v_posted || r.posted;
      v_versions := v_versions || r.version;
      v_before := v_before || jsonb_build_object(r.account_id::text, r.posted);
      v_after := v_after || jsonb_build_object(r.account_id::text, r.posted + r.net);
    END IF;
  END LOOP;
  IF v_refused IS NOT NULL THEN
    RETURN jsonb_build_object('refusal', api_problem('conflict', format('account %s cannot receive this transfer', v_refused)));
  END IF;

  INSERT INTO transactions (id, kind, description, reference, metadata, actor_id, actor_type, reverses)
  VALUES (v_id, p_kind, p_description, p_reference, coalesce(p_metadata, '{}'::jsonb),
          (p_actor->>'id')::uuid, coalesce(p_actor->>'type', 'system'), p_reverses)
  RETURNING created_at INTO v_created;

  IF p_capture IS NOT NULL THEN  -- released before the entries land: it is not held any more
    UPDATE holds SET status = 'posted', captured_amount = v_release, transaction_id = v_id,
                     resolved_at = clock_timestamp()
     WHERE id = (p_capture->>'hold')::uuid;
  END IF;

  -- Credits first: an account both debited and credited here never dips on the way. Each
  -- entry carries the balance and version it produces (the trigger checks them).
  WITH legs AS (
    SELECT u.account_id, u.currency, u.amount, u.entry_type, u.counterpart_id, s.posted, s.version,
           row_number() OVER (PARTITION BY u.account_id ORDER BY u.amount DESC, u.ord) AS k,
           sum(u.amount) OVER (PARTITION BY u.account_id ORDER BY u.amount DESC, u.ord) AS running, u.ord
      FROM unnest(p_accounts, p_currencies, p_amounts, v_types, v_counter)
           WITH ORDINALITY AS u(account_id, currency, amount, entry_type, counterpart_id, ord)
      LEFT JOIN unnest(v_ids, v_posted, v_versions) AS s(account_id, posted, version) ON s.account_id = u.account_id
  ), written AS (
    INSERT INTO entries (transaction_id, account_id, currency, amount, entry_type, counterpart_id, balance_after,
                         account_version)
    SELECT v_id, l.account_id, l.currency, l.amount, l.entry_type, l.counterpart_id,
           l.posted + l.running, l.version + l.k
      FROM legs l ORDER BY l.amount DESC, l.ord
    RETURNING id, account_id, currency, amount, entry_type, counterpart_id, balance_after, created_at
  )
  SELECT jsonb_agg(jsonb_build_object(
           'id', w.id, 'account_id', w.account_id, 'currency', w.currency, 'amount', w.amount,
           'entry_type', w.entry_type, 'counterpart_id', w.counterpart_id,
           'balance_after', w.balance_after, 'created_at', w.created_at) ORDER BY w.created_at, w.amount DESC)
    INTO v_entries FROM written w;

  IF p_audit IS NOT NULL THEN
    PERFORM ledger_audit(p_actor => p_actor, p_rows => jsonb_build_array(p_audit || jsonb_build_object('ledger', true)),
                         p_resource_id => v_id::text, p_before => jsonb_build_object('balances', v_before),
                         p_after => jsonb_build_object('transaction_id', v_id, 'kind', p_kind, 'entries', v_entries,
                                                       'balances', v_after));
  END IF;

  RETURN jsonb_build_object('transaction', jsonb_build_object(
    'id', v_id, 'kind', p_kind, 'status', 'posted', 'description', p_description, 'reference', p_reference,
    'metadata', coalesce(p_metadata, '{}'::jsonb), 'reverses', p_reverses, 'actor_id', p_actor->>'id',
    'created_at', v_created, 'entries', v_entries));
END $$;

-- Callable by the application role (and the owner), not by PUBLIC.
REVOKE ALL ON FUNCTION ledger_post(text, uuid[], text[], numeric[], jsonb, text[], uuid[], jsonb, text, text, jsonb,
                                   uuid, boolean, uuid, text[], uuid, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_post(text, uuid[], text[], numeric[], jsonb, text[], uuid[], jsonb, text, text,
                                      jsonb, uuid, boolean, uuid, text[], uuid, jsonb) TO ledgerline_app;
