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
--   "before"?, "after"?, "metadata"?}); it gets the balances before/after and the entries
--   (as ledger_audit merges a "ledger" row's payloads).
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
-- Cost (this runs on every money request, and PL/pgSQL sets up every expression and
-- statement it runs again in each transaction): per account, one primary-key probe locks
-- its balance row and reads it with its account (a hot or missing account takes a second,
-- that locks nothing), and the account is checked as soon as it is locked; then ONE
-- statement writes the transaction and its entries (a data-modifying CTE), and
-- ledger_audit the audit row. Two legs on two accounts, the usual posting, take a
-- straight path: no query to group the legs, each entry's id, time, balance and version
-- in plain variables, the entries and their audit payload built from them (no RETURNING
-- to aggregate). Entries are written credits first, each with a time just after the
-- transaction's, in that order.
--
-- plan_cache_mode: a generic plan (index probes on the legs' accounts) is right for any
-- input; without it PostgreSQL kept planning custom ones on every call under load.
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
  v_m        integer;
  -- Per account (the legs' distinct accounts, in id order): what the legs do to it ...
  v_acct     uuid[];
  v_leg_cur  text[];
  v_leg_max  text[];
  v_net      numeric[];
  v_debited  boolean[];
  -- ... and its balance as locked (v_hot: read, not locked).
  v_hot      boolean[];
  v_posted   numeric[];
  v_version  bigint[];
  -- Per leg: the order the entries are written in (credits first), each entry's balance
  -- and version; for two legs, the two entries' ids, balances and versions.
  v_order    integer[];
  v_bal      numeric[];
  v_ver      bigint[];
  v_first    integer;
  v_second   integer;
  v_id1      uuid;
  v_id2      uuid;
  v_bal1     numeric;
  v_bal2     numeric;
  v_ver1     bigint;
  v_ver2     bigint;
  r          record;
  i          integer;
  k          integer;
BEGIN
  IF v_n < 2 OR coalesce(array_length(p_currencies, 1), 0) <> v_n OR coalesce(array_length(p_amounts, 1), 0) <> v_n
     OR coalesce(array_length(v_types, 1), 0) <> v_n THEN
    RAISE EXCEPTION 'a transaction needs at least two legs, each with an account, currency and amount'
      USING ERRCODE = 'LLVL0';
  END IF;
  IF v_counter IS NULL THEN  -- two legs name each other; more have no one counterpart
    v_counter := CASE WHEN v_n = 2 THEN ARRAY[p_accounts[2], p_accounts[1]] ELSE array_fill(NULL::uuid, ARRAY[v_n]) END;
  END IF;

  -- The legs, per account (in id order), and the order the entries are written in:
  -- credits first, so an account both debited and credited here never dips on the way.
  IF v_n = 2 AND p_accounts[1] <> p_accounts[2] THEN  -- the usual posting: no query needed
    k := CASE WHEN p_accounts[1] < p_accounts[2] THEN 1 ELSE 2 END;
    v_acct := ARRAY[p_accounts[k], p_accounts[3 - k]];
    v_leg_cur := ARRAY[p_currencies[k], p_currencies[3 - k]];
    v_leg_max := v_leg_cur;
    v_net := ARRAY[p_amounts[k], p_amounts[3 - k]];
    v_debited := ARRAY[p_amounts[k] < 0, p_amounts[3 - k] < 0];
    v_order := CASE WHEN p_amounts[1] >= p_amounts[2] THEN ARRAY[1, 2] ELSE ARRAY[2, 1] END;
  ELSE
    SELECT array_agg(l.account_id ORDER BY l.account_id), array_agg(l.currency ORDER BY l.account_id),
           array_agg(l.currency_max ORDER BY l.account_id), array_agg(l.net ORDER BY l.account_id),
           array_agg(l.debited ORDER BY l.account_id),
           (SELECT array_agg(o.ord ORDER BY o.amount DESC, o.ord)
              FROM unnest(p_amounts) WITH ORDINALITY AS o(amount, ord))
      INTO v_acct, v_leg_cur, v_leg_max, v_net, v_debited, v_order
      FROM (SELECT u.account_id, min(u.currency) AS currency, max(u.currency) AS currency_max,
                   sum(u.amount) AS net, bool_or(u.amount < 0) AS debited
              FROM unnest(p_accounts, p_currencies, p_amounts) AS u(account_id, currency, amount)
             GROUP BY u.account_id) l;
  END IF;
  v_m := array_length(v_acct, 1);

  -- Lock the non-hot balances, one by one in account-id order, and check each account as
  -- it is once locked (its status too). A hot account's balance is read, never locked; a
  -- missing account has neither.
  FOR k IN 1 .. v_m LOOP
    SELECT b.currency, b.status, b.may_go_negative, b.posted, b.held, b.version, a.kind, a.owner_id, b.hot
      INTO r
      FROM balances b JOIN accounts a ON a.id = b.account_id
     WHERE b.account_id = v_acct[k] AND NOT b.hot
       FOR UPDATE OF b;
    IF NOT FOUND THEN
      SELECT b.currency, a.status, b.may_go_negative, b.posted, b.held, b.version, a.kind, a.owner_id, b.hot
        INTO r
        FROM balances b JOIN accounts a ON a.id = b.account_id
       WHERE b.account_id = v_acct[k] AND b.hot;
    END IF;
    IF r.hot IS NULL OR (p_owner IS NOT NULL AND v_debited[k] AND r.owner_id IS DISTINCT FROM p_owner)
       OR (p_credit_kinds IS NOT NULL AND NOT v_debited[k] AND NOT (r.kind = ANY (p_credit_kinds))) THEN
      -- A kind the caller may not pay is word for word a missing account.
      RETURN jsonb_build_object('refusal', api_problem('not_found', format('account %s not found', v_acct[k])));
    END IF;
    -- Only an escrow's own transitions (escrow_transition) move its account's money: no
    -- adjustment, reversal or other posting touches it (a user's was "not found" above).
    IF r.kind = 'escrow' AND p_kind NOT IN ('escrow_fund', 'escrow_release', 'escrow_refund') THEN
      RETURN jsonb_build_object('refusal', api_problem(CASE WHEN p_owner IS NULL THEN 'conflict' ELSE 'not_found' END,
        CASE WHEN p_owner IS NULL THEN format('account %s is an escrow''s: only its escrow''s transitions move its money', v_acct[k])
             ELSE format('account %s not found', v_acct[k]) END));
    END IF;
    -- An account p_owner does not own is only credited here (a debited one was "not found"):
    -- whatever stops it, it "cannot receive this transfer", said after the loop, so the
    -- caller's own accounts' refusals come first whatever the accounts' ids.
    IF v_leg_cur[k] <> r.currency OR v_leg_max[k] <> r.currency THEN
      IF p_owner IS NOT NULL AND r.owner_id IS DISTINCT FROM p_owner THEN
        v_refused := least(v_refused, v_acct[k]);
        CONTINUE;
      END IF;
      RETURN jsonb_build_object('refusal', api_problem('validation_error',
        format('account %s holds %s, not %s', v_acct[k], r.currency, v_leg_cur[k])));
    END IF;
    IF r.status = 'closed' OR (r.status = 'frozen' AND NOT p_allow_frozen) THEN
      IF p_owner IS NOT NULL AND r.owner_id IS DISTINCT FROM p_owner THEN
        v_refused := least(v_refused, v_acct[k]);
        CONTINUE;
      END IF;
      RETURN jsonb_build_object('refusal', api_problem('conflict',
        format('account %s is %s; it cannot send or receive money', v_acct[k], r.status)));
    END IF;
    IF NOT r.may_go_negative
       AND (r.posted - r.held + v_net[k] + (CASE WHEN v_debited[k] THEN v_release ELSE 0 END)) < 0 THEN
      IF p_owner IS NOT NULL AND r.owner_id IS DISTINCT FROM p_owner THEN
        v_refused := least(v_refused, v_acct[k]);
        CONTINUE;
      END IF;
      RETURN jsonb_build_object('refusal', api_problem('insufficient_funds',
        format('account %s has %s %s available; this needs %s',
               v_acct[k], r.posted - r.held + CASE WHEN v_debited[k] THEN v_release ELSE 0 END, r.currency,
               -v_net[k])));
    END IF;
    v_hot[k] := r.hot;
    v_posted[k] := r.posted;
    v_version[k] := r.version;
  END LOOP;
  IF v_refused IS NOT NULL THEN
    RETURN jsonb_build_object('refusal', api_problem('conflict', format('account %s cannot receive this transfer', v_refused)));
  END IF;

  IF p_capture IS NOT NULL THEN  -- released before the entries land: it is not held any more
    UPDATE holds SET status = 'posted', captured_amount = v_release, transaction_id = v_id,
                     resolved_at = clock_timestamp()
     WHERE id = (p_capture->>'hold')::uuid;
  END IF;
  v_created := clock_timestamp();

  IF v_n = 2 AND v_m = 2 THEN
    -- Two legs on two accounts. The first entry written is leg v_first (of account k), the
    -- second leg v_second; each carries the balance and version it produces (the entries
    -- trigger checks them), and a time just after the transaction's, in the order written.
    v_first := v_order[1];
    v_second := v_order[2];
    k := CASE WHEN v_acct[1] = p_accounts[v_first] THEN 1 ELSE 2 END;
    IF NOT v_hot[k] THEN
      v_bal1 := v_posted[k] + p_amounts[v_first];
      v_ver1 := v_version[k] + 1;
      v_before := jsonb_build_object(p_accounts[v_first]::text, v_posted[k]);
      v_after := jsonb_build_object(p_accounts[v_first]::text, v_bal1);
    END IF;
    IF NOT v_hot[3 - k] THEN
      v_bal2 := v_posted[3 - k] + p_amounts[v_second];
      v_ver2 := v_version[3 - k] + 1;
      v_before := v_before || jsonb_build_object(p_accounts[v_second]::text, v_posted[3 - k]);
      v_after := v_after || jsonb_build_object(p_accounts[v_second]::text, v_bal2);
    END IF;
    v_id1 := gen_random_uuid();
    v_id2 := gen_random_uuid();
    v_entries := jsonb_build_array(
      jsonb_build_object('id', v_id1, 'account_id', p_accounts[v_first], 'currency', p_currencies[v_first],
                         'amount', p_amounts[v_first]::numeric(19,4), 'entry_type', v_types[v_first],
                         'counterpart_id', v_counter[v_first], 'balance_after', v_bal1::numeric(19,4),
                         'created_at', v_created + interval '1 microsecond'),
      jsonb_build_object('id', v_id2, 'account_id', p_accounts[v_second], 'currency', p_currencies[v_second],
                         'amount', p_amounts[v_second]::numeric(19,4), 'entry_type', v_types[v_second],
                         'counterpart_id', v_counter[v_second], 'balance_after', v_bal2::numeric(19,4),
                         'created_at', v_created + interval '2 microseconds'));

    -- One statement writes the transaction and its entries.
    WITH t AS (
      INSERT INTO transactions (id, kind, description, reference, metadata, actor_id, actor_type, reverses, created_at)
      VALUES (v_id, p_kind, p_description, p_reference, coalesce(p_metadata, '{}'::jsonb),
              (p_actor->>'id')::uuid, coalesce(p_actor->>'type', 'system'), p_reverses, v_created)
    )
    INSERT INTO entries (id, transaction_id, account_id, currency, amount, entry_type, counterpart_id,
                         balance_after, account_version, created_at)
    VALUES (v_id1, v_id, p_accounts[v_first], p_currencies[v_first], p_amounts[v_first], v_types[v_first],
            v_counter[v_first], v_bal1, v_ver1, v_created + interval '1 microsecond'),
           (v_id2, v_id, p_accounts[v_second], p_currencies[v_second], p_amounts[v_second], v_types[v_second],
            v_counter[v_second], v_bal2, v_ver2, v_created + interval '2 microseconds');
  ELSE
    -- Any number of legs: a running balance per account, in the order written.
    FOR k IN 1 .. v_m LOOP
      IF NOT v_hot[k] THEN
        v_before := v_before || jsonb_build_object(v_acct[k]::text, v_posted[k]);
        v_after := v_after || jsonb_build_object(v_acct[k]::text, v_posted[k] + v_net[k]);
      END IF;
    END LOOP;
    v_bal := array_fill(NULL::numeric, ARRAY[v_n]);
    v_ver := array_fill(NULL::bigint, ARRAY[v_n]);
    FOREACH i IN ARRAY v_order LOOP
      k := array_position(v_acct, p_accounts[i]);
      IF NOT v_hot[k] THEN
        v_posted[k] := v_posted[k] + p_amounts[i];
        v_version[k] := v_version[k] + 1;
        v_bal[i] := v_posted[k];
        v_ver[i] := v_version[k];
      END IF;
    END LOOP;

    WITH t AS (
      INSERT INTO transactions (id, kind, description, reference, metadata, actor_id, actor_type, reverses, created_at)
      VALUES (v_id, p_kind, p_description, p_reference, coalesce(p_metadata, '{}'::jsonb),
              (p_actor->>'id')::uuid, coalesce(p_actor->>'type', 'system'), p_reverses, v_created)
    ), written AS (
      INSERT INTO entries (transaction_id, account_id, currency, amount, entry_type, counterpart_id, balance_after,
                           account_version)
      SELECT v_id, p_accounts[o.i], p_currencies[o.i], p_amounts[o.i], v_types[o.i], v_counter[o.i], v_bal[o.i],
             v_ver[o.i]
        FROM unnest(v_order) WITH ORDINALITY AS o(i, n)
       ORDER BY o.n
      RETURNING id, account_id, currency, amount, entry_type, counterpart_id, balance_after, created_at
    ), listed AS (
      SELECT jsonb_agg(jsonb_build_object(
               'id', w.id, 'account_id', w.account_id, 'currency', w.currency, 'amount', w.amount,
               'entry_type', w.entry_type, 'counterpart_id', w.counterpart_id,
               'balance_after', w.balance_after, 'created_at', w.created_at) ORDER BY w.created_at, w.amount DESC)
               AS entries
        FROM written w
    )
    SELECT l.entries INTO v_entries FROM listed l;
  END IF;

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
