-- The request path in one statement (issue 12).
--
-- Before: an authenticated money request cost four round trips and three transactions:
-- the session check, the rate-limit guard, and the operation (claim + posting, then the
-- stored response with COMMIT); a refusal was raised, rolled back, and stored again by a
-- second transaction; every entry ran a row trigger that updated its balance.
--
-- Now:
--   * auth_admit: who is calling (session, jti, API key, status, role), may they call the
--     route (role, second factor), and is there budget left (rate limits, velocity) in one
--     function call: a read route's admission is one statement;
--   * money_call: admission, the idempotency claim, the operation, one audit row and the
--     stored response in ONE statement (autocommit: one round trip, one transaction). A
--     refusal (insufficient funds, frozen, currency...) is returned by the operation, not
--     raised: it is stored and answered by the same call, with no EXCEPTION block or
--     savepoint anywhere on the way;
--   * the ledger's cores (ledger_post, ledger_hold_place/post/release, ledger_reversal)
--     return a refusal instead of raising; the functions the Python domain calls
--     (ledger_post_legs, ledger_hold_create/capture/void, ledger_reverse) keep their
--     signatures and raise it (ledger_raise): one implementation each;
--   * entries of a posting no longer run a row trigger: ledger_post computes each entry's
--     balance_after and account_version from the balance it has locked, and one
--     statement-level trigger checks every entry of the statement and applies them to the
--     balances set-based (a writer that gets either wrong is refused: invariants 3 and 5
--     hold for any writer; a plain INSERT without them gets them filled in by a row
--     trigger that runs only then).

-- Rendering, shared by every function that answers an HTTP request --------------------

-- RFC 3339 in UTC with microseconds, exactly as ledgerline.jsonutil renders a datetime.
CREATE FUNCTION api_time(p_at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
$$;

-- A Money object: the amount in the currency's minor units, as text.
CREATE FUNCTION api_money(p_amount numeric, p_currency text) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT jsonb_build_object('amount', round(p_amount, c.minor_units)::text, 'currency', p_currency)
    FROM currencies c WHERE c.code = p_currency;
$$;

-- A problem (RFC 9457) of ledgerline.errors: the codes SQL answers with, their status
-- and title (a test keeps them equal to the Python classes).
CREATE FUNCTION api_problem(p_code text, p_detail text, p_errors jsonb DEFAULT NULL) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT jsonb_build_object('type', 'https://docs.ledgerline.dev/problems/' || replace(p_code, '_', '-'),
                            'title', t.title, 'status', t.status, 'detail', p_detail, 'code', p_code)
         || CASE WHEN p_errors IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('errors', p_errors) END
    FROM (VALUES ('unauthorized', 401, 'Authentication required'),
                 ('forbidden', 403, 'Not allowed'),
                 ('not_found', 404, 'Not found'),
                 ('conflict', 409, 'Conflict'),
                 ('insufficient_funds', 409, 'Insufficient funds'),
                 ('invalid_state_transition', 409, 'Invalid state transition'),
                 ('idempotency_key_in_progress', 409, 'Request with this key in progress'),
                 ('validation_error', 422, 'Request is not valid'),
                 ('idempotency_key_reused', 422, 'Idempotency-Key reused'),
                 ('rate_limited', 429, 'Too many requests')) AS t(code, status, title)
   WHERE t.code = p_code;
$$;

-- A field's validation problem, as ledgerline.errors.ValidationFailed renders one.
CREATE FUNCTION api_invalid(p_field text, p_message text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT api_problem('validation_error', p_field || ': ' || p_message,
                     jsonb_build_array(jsonb_build_object('field', p_field, 'message', p_message)));
$$;

-- Raise a refusal for the callers that want an exception (ledgerline.ledger.sql maps the
-- LL SQLSTATEs back to the same domain errors).
CREATE FUNCTION ledger_raise(p_problem jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING MESSAGE = p_problem->>'detail',
    ERRCODE = CASE p_problem->>'code'
                WHEN 'not_found' THEN 'LLNF0' WHEN 'insufficient_funds' THEN 'LLIF0'
                WHEN 'conflict' THEN 'LLCF0' WHEN 'invalid_state_transition' THEN 'LLST0'
                ELSE 'LLVL0' END;
END $$;

CREATE FUNCTION ledger_repr_escape(p_text text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT replace(replace(replace(replace(p_text, '\', '\\'), E'\n', '\n'), E'\r', '\r'), E'\t', '\t');
$$;

-- Python's repr() of a string, for messages that quote what the caller sent.
CREATE FUNCTION ledger_repr(p_text text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN position('''' IN p_text) > 0 AND position('"' IN p_text) = 0
              THEN '"' || ledger_repr_escape(p_text) || '"'
              ELSE '''' || replace(ledger_repr_escape(p_text), '''', '\''') || '''' END;
$$;

-- An amount sent as text in major units (ledgerline.money.parse_amount, word for word):
-- {"amount": n} or {"problem": ...}.
CREATE FUNCTION ledger_amount(p_text text, p_currency text, p_field text DEFAULT 'amount',
                              p_allow_zero boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v_units smallint;
  v_places integer;
BEGIN
  SELECT minor_units INTO v_units FROM currencies WHERE code = p_currency;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('problem', api_problem('validation_error', format('currency %L is not supported', p_currency),
      jsonb_build_array(jsonb_build_object('field', 'currency', 'message', 'use an ISO 4217 code, one of '
        || (SELECT string_agg(code, ', ' ORDER BY code) FROM currencies)))));
  END IF;
  IF p_text IS NULL THEN
    RETURN jsonb_build_object('problem', api_invalid(p_field,
      'send the amount as a string, e.g. "150.00", not as a JSON number'));
  END IF;
  IF p_text !~ '^(0|[1-9][0-9]*)(\.[0-9]+)?$' THEN
    RETURN jsonb_build_object('problem', api_invalid(p_field,
      format('%s is not a plain decimal amount like "150.00" (no sign, exponent or spaces)', ledger_repr(p_text))));
  END IF;
  IF length(split_part(p_text, '.', 1)) > 15 THEN
    RETURN jsonb_build_object('problem', api_invalid(p_field,
      'amount is too large: at most 15 digits before the decimal point'));
  END IF;
  v_places := length(split_part(p_text, '.', 2));
  IF v_places > v_units THEN
    RETURN jsonb_build_object('problem', api_invalid(p_field,
      format('amount has %s decimal places; %s allows %s', v_places, p_currency, v_units)));
  END IF;
  IF p_text::numeric = 0 AND NOT p_allow_zero THEN
    RETURN jsonb_build_object('problem', api_invalid(p_field, 'amount must be greater than zero'));
  END IF;
  RETURN jsonb_build_object('amount', p_text::numeric);
END $$;

-- Admission -----------------------------------------------------------------------------

-- Who is calling, may they call this route, and is there budget left for it.
--
-- p_claims: what the authorizer verified (NULL on a public route): an access token's
--   {typ: access, sub, jti, sid, amr} or an API key's {typ: api_key, sub, api_key_id}.
-- p_policy: the route's rules, computed in Python from its row (ledgerline.auth.admission):
--   {roles: [...] | null, second_factor_roles: [...], key_role, forbidden, enrolment}.
-- p_checks: [{key, count, period, name, route}], counted only once the caller is admitted.
-- p_actor: the audit actor of a refusal ({ip, user_agent, metadata}).
-- Returns {outcome: ok|unauthorized|forbidden|rate_limited, role?, detail?, retry_after?}.
CREATE FUNCTION auth_admit(p_claims jsonb, p_policy jsonb, p_checks jsonb, p_actor jsonb)
RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
  v_role text;
  v_sub  uuid := (p_claims->>'sub')::uuid;
  r      record;
BEGIN
  IF p_claims IS NULL THEN
    v_role := NULL;
  ELSIF p_claims->>'typ' = 'api_key' THEN
    -- A key acts with the reach of its role (a merchant), whatever its owner becomes.
    PERFORM 1 FROM api_keys k JOIN users u ON u.id = k.user_id
     WHERE k.id = (p_claims->>'api_key_id')::uuid AND k.user_id = v_sub AND k.revoked_at IS NULL
       AND u.status = 'active' AND u.role = p_policy->>'key_role';
    IF NOT FOUND THEN
      RETURN jsonb_build_object('outcome', 'unauthorized', 'detail', 'the API key is not valid or was revoked');
    END IF;
    v_role := p_policy->>'key_role';
  ELSIF p_claims->>'typ' = 'access' THEN
    SELECT u.role, u.status,
           EXISTS (SELECT 1 FROM revoked_tokens t WHERE t.jti = (p_claims->>'jti')::uuid) AS jti_revoked,
           coalesce((SELECT s.revoked_at IS NOT NULL OR s.expires_at <= now() OR s.user_id <> u.id
                       FROM sessions s WHERE s.id = (p_claims->>'sid')::uuid), true) AS ended
      INTO r FROM users u WHERE u.id = v_sub;
    IF NOT FOUND OR r.status <> 'active' THEN
      RETURN jsonb_build_object('outcome', 'unauthorized', 'detail', 'this account cannot sign in; contact support');
    END IF;
    IF r.jti_revoked OR r.ended THEN
      RETURN jsonb_build_object('outcome', 'unauthorized', 'detail', 'the session has ended; log in again');
    END IF;
    v_role := r.role;
  ELSE
    RETURN jsonb_build_object('outcome', 'unauthorized', 'detail', 'the token is not an access token');
  END IF;

  IF jsonb_typeof(p_policy->'roles') = 'array' AND NOT (p_policy->'roles' ? v_role) THEN
    RETURN jsonb_build_object('outcome', 'forbidden', 'role', v_role, 'detail', p_policy->>'forbidden');
  END IF;
  IF p_policy->'second_factor_roles' ? v_role AND NOT coalesce(p_claims->'amr' ? 'otp', false) THEN
    RETURN jsonb_build_object('outcome', 'forbidden', 'role', v_role, 'detail', p_policy->>'enrolment');
  END IF;

  IF jsonb_array_length(coalesce(p_checks, '[]'::jsonb)) > 0 THEN
    -- One atomic upsert counts every check (sorted: no deadlocks between callers); refused
    -- requests count too, so hammering does not open the next window early.
    WITH counted AS (
      INSERT INTO rate_limit_buckets AS b (key, window_start, hits)
      SELECT c->>'key', to_timestamp(floor(extract(epoch FROM now()) / (c->>'period')::int) * (c->>'period')::int), 1
        FROM jsonb_array_elements(p_checks) c ORDER BY c->>'key'
      ON CONFLICT (key) DO UPDATE
         SET hits = CASE WHEN b.window_start = excluded.window_start THEN b.hits + 1 ELSE 1 END,
             window_start = excluded.window_start
      RETURNING key, hits, extract(epoch FROM window_start - now()) AS window_offset
    ), over AS (
      SELECT c, n.hits, greatest(1, ceil(n.window_offset + (c->>'period')::int))::int AS retry_after
        FROM counted n JOIN jsonb_array_elements(p_checks) c ON c->>'key' = n.key
       WHERE n.hits > (c->>'count')::int
    ), audited AS (
      -- Velocity blocks are each audited; a rate limit only at its first refusal of a window.
      INSERT INTO audit_log (category, action, actor_id, actor_type, actor_ip, user_agent, resource_type, resource_id,
                             metadata, content_hash)
      SELECT 'auth', CASE WHEN o.c->>'name' = 'velocity' THEN 'auth.velocity_blocked' ELSE 'auth.rate_limited' END,
             v_sub, coalesce(CASE WHEN p_claims->>'typ' = 'api_key' THEN 'api_key' END, v_role, 'anonymous'),
             (p_actor->>'ip')::inet, p_actor->>'user_agent', 'rate_limit', o.c->>'key',
             coalesce(p_actor->'metadata', '{}'::jsonb)
               || jsonb_build_object('limit', o.c->>'name', 'key', o.c->>'key', 'hits', o.hits, 'route', o.c->>'route'),
             ''
        FROM over o
       WHERE o.c->>'name' = 'velocity' OR o.hits = (o.c->>'count')::int + 1
    )
    SELECT o.c, o.hits, o.retry_after INTO r FROM over o ORDER BY o.retry_after DESC LIMIT 1;
    IF FOUND THEN
      RETURN jsonb_build_object(
        'outcome', 'rate_limited', 'role', v_role, 'retry_after', r.retry_after,
        'detail', CASE WHEN r.c->>'name' = 'velocity'
                       THEN format('more than %s transfers in %s s; try again in %s s or contact support',
                                   r.c->>'count', r.c->>'period', r.retry_after)
                       ELSE format('too many requests; try again in %s s', r.retry_after) END);
    END IF;
  END IF;
  RETURN jsonb_build_object('outcome', 'ok', 'role', v_role);
END $$;

-- Entries: one statement-level trigger checks them and applies them -----------------

DROP TRIGGER entries_apply ON entries;
DROP FUNCTION ledger_entry_apply();

-- (account_id, account_version) names an entry's place in its account's history.
CREATE UNIQUE INDEX entries_account_version ON entries (account_id, account_version)
  WHERE account_version IS NOT NULL;

-- Every entry a statement inserts: its transaction was written by this database
-- transaction (so the deferred zero-sum check sees all of them), its currency is a ledger
-- currency within its minor units and its account's currency (invariant 3). Then, in one
-- statement per kind: hot accounts get a delta row each (never a lock on their balance);
-- other balances move by the statement's sum, and each entry must carry the balance and
-- version it produced (invariant 5: the writer computed them from the locked balance; a
-- writer that did not is refused, and so is one that breaks invariant 6).
CREATE FUNCTION ledger_entries_apply() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  r record;
BEGIN
  SELECT e.transaction_id, e.account_id, e.currency, e.amount, e.balance_after, e.account_version,
         t.id IS NOT NULL AND t.created_xid = pg_current_xact_id() AS same_transaction,
         c.minor_units, b.account_id IS NOT NULL AS account_found, b.currency AS account_currency, b.hot
    INTO r
    FROM inserted e
    LEFT JOIN transactions t ON t.id = e.transaction_id
    LEFT JOIN currencies c ON c.code = e.currency
    LEFT JOIN balances b ON b.account_id = e.account_id
   WHERE t.id IS NULL OR t.created_xid <> pg_current_xact_id() OR c.code IS NULL
      OR e.amount <> round(e.amount, c.minor_units) OR b.account_id IS NULL OR b.currency <> e.currency
      OR (b.hot AND (e.balance_after IS NOT NULL OR e.account_version IS NOT NULL))
      OR (NOT b.hot AND (e.balance_after IS NULL OR e.account_version IS NULL))
   LIMIT 1;
  IF FOUND THEN
    IF NOT r.same_transaction THEN
      RAISE EXCEPTION 'entry for transaction %: entries are only written together with their transaction',
        r.transaction_id USING ERRCODE = 'check_violation';
    ELSIF r.minor_units IS NULL THEN
      RAISE EXCEPTION 'entry currency % is not a ledger currency', r.currency USING ERRCODE = 'check_violation';
    ELSIF r.amount <> round(r.amount, r.minor_units) THEN
      RAISE EXCEPTION 'entry amount % has more decimal places than % allows (%)', r.amount, r.currency, r.minor_units
        USING ERRCODE = 'check_violation';
    ELSIF NOT r.account_found THEN
      RAISE EXCEPTION 'entry for account %: no such account', r.account_id USING ERRCODE = 'foreign_key_violation';
    ELSIF r.account_currency <> r.currency THEN
      RAISE EXCEPTION 'entry currency % does not match account % currency %', r.currency, r.account_id,
        r.account_currency USING ERRCODE = 'check_violation', CONSTRAINT = 'entries_currency_matches_account';
    ELSE
      RAISE EXCEPTION 'entry for account %: a % account''s entry % its balance_after and account_version',
        r.account_id, CASE WHEN r.hot THEN 'hot' ELSE 'non-hot' END,
        CASE WHEN r.hot THEN 'has no' ELSE 'carries' END USING ERRCODE = 'check_violation';
    END IF;
  END IF;

  INSERT INTO balance_deltas (account_id, amount)
  SELECT e.account_id, e.amount FROM inserted e WHERE e.account_version IS NULL;

  WITH per_account AS (
    SELECT account_id, sum(amount) AS net, count(*) AS n FROM inserted
     WHERE account_version IS NOT NULL GROUP BY account_id
  ), applied AS (
    UPDATE balances b SET posted = b.posted + p.net, version = b.version + p.n
      FROM per_account p WHERE b.account_id = p.account_id AND NOT b.hot
    RETURNING b.account_id, b.posted - p.net AS posted_before, b.version - p.n AS version_before
  ), expected AS (
    SELECT e.account_id, e.balance_after, e.account_version,
           a.posted_before + sum(e.amount) OVER w AS want_balance,
           a.version_before + row_number() OVER w AS want_version
      FROM inserted e JOIN applied a ON a.account_id = e.account_id
    WINDOW w AS (PARTITION BY e.account_id ORDER BY e.account_version)
  )
  SELECT * INTO r FROM expected
   WHERE balance_after IS DISTINCT FROM want_balance OR account_version IS DISTINCT FROM want_version LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'entry for account %: balance_after % and version % do not follow its balance (% and %)',
      r.account_id, r.balance_after, r.account_version, r.want_balance, r.want_version
      USING ERRCODE = 'check_violation', CONSTRAINT = 'entries_follow_balance';
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER entries_apply AFTER INSERT ON entries REFERENCING NEW TABLE AS inserted
  FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_apply();

-- A writer that does not compute balance_after and account_version (plain INSERTs by an
-- operator, say) gets them filled in, from the locked balance and the rows its statement
-- has inserted before (visible to a BEFORE trigger, not yet applied). ledger_post computes
-- them itself, so this never runs on its non-hot rows; on a hot account it only looks.
CREATE FUNCTION ledger_entry_fill() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  r record;
  v_pending numeric;
  v_count bigint;
BEGIN
  PERFORM 1 FROM balances b WHERE b.account_id = NEW.account_id AND b.currency = NEW.currency AND NOT b.hot;
  IF NOT FOUND THEN
    RETURN NEW;  -- a hot account (a delta, no balance_after), or a mistake the statement check names
  END IF;
  SELECT b.posted, b.version INTO r FROM balances b WHERE b.account_id = NEW.account_id FOR UPDATE;
  SELECT coalesce(sum(e.amount), 0), count(*) INTO v_pending, v_count
    FROM entries e WHERE e.account_id = NEW.account_id AND e.account_version > r.version;
  NEW.account_version := r.version + v_count + 1;
  NEW.balance_after := r.posted + v_pending + NEW.amount;
  RETURN NEW;
END $$;

CREATE TRIGGER entries_fill BEFORE INSERT ON entries
  FOR EACH ROW WHEN (NEW.account_version IS NULL) EXECUTE FUNCTION ledger_entry_fill();

-- Posting -------------------------------------------------------------------------------

-- Post one balanced transaction of any number of legs, or say why not: lock the non-hot
-- balances it touches in account-id order (hot ones are appended to, never locked), check
-- every account and the available funds, then write the transaction, its entries (each
-- with the balance and version it produces) and at most one audit row.
-- Returns {"refusal": <problem>} or {"transaction": {...}}.
--
-- p_owner: every debited account must be this user's (else "not found"); a credited one
--   it does not own that cannot take the money only "cannot receive this transfer".
-- p_credit_kinds: every credited account must be of one of these kinds (else "not found").
-- p_capture: {"hold": id, "amount": n}: a hold of the debited account, captured by this
--   posting (its amount is no longer held: the check counts it as available).
-- p_audit: one audit row spec ({"action", "category", "resource_type"?, "resource_id"?,
--   "before"?, "after"?, "metadata"?}); it gets the balances before/after and the entries.
CREATE FUNCTION ledger_post(
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
    PERFORM ledger_audit(p_actor, jsonb_build_array(p_audit || jsonb_build_object('ledger', true)), v_id::text,
                         jsonb_build_object('balances', v_before),
                         jsonb_build_object('transaction_id', v_id, 'kind', p_kind, 'entries', v_entries,
                                            'balances', v_after));
  END IF;

  RETURN jsonb_build_object('transaction', jsonb_build_object(
    'id', v_id, 'kind', p_kind, 'status', 'posted', 'description', p_description, 'reference', p_reference,
    'metadata', coalesce(p_metadata, '{}'::jsonb), 'reverses', p_reverses, 'actor_id', p_actor->>'id',
    'created_at', v_created, 'entries', v_entries));
END $$;

-- The raising form the Python domain calls (ledgerline.ledger.postings), same signature
-- as before: the posting, or the refusal raised.
CREATE OR REPLACE FUNCTION ledger_post_legs(
  p_kind text, p_accounts uuid[], p_currencies text[], p_amounts numeric[], p_entry_types text[],
  p_counterparts uuid[], p_actor jsonb, p_audit jsonb DEFAULT NULL, p_description text DEFAULT NULL,
  p_reference text DEFAULT NULL, p_metadata jsonb DEFAULT NULL, p_reverses uuid DEFAULT NULL,
  p_allow_frozen boolean DEFAULT false, p_owner uuid DEFAULT NULL, p_credit_kinds text[] DEFAULT NULL,
  p_id uuid DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  v_result jsonb;
  v_audit  jsonb := NULL;
BEGIN
  SELECT a INTO v_audit FROM jsonb_array_elements(p_audit) a WHERE (a->>'ledger')::boolean LIMIT 1;
  v_result := ledger_post(p_kind => p_kind, p_accounts => p_accounts, p_currencies => p_currencies,
                          p_amounts => p_amounts, p_actor => p_actor, p_entry_types => p_entry_types,
                          p_counterparts => p_counterparts, p_audit => v_audit, p_description => p_description,
                          p_reference => p_reference, p_metadata => p_metadata, p_reverses => p_reverses,
                          p_allow_frozen => p_allow_frozen, p_owner => p_owner, p_credit_kinds => p_credit_kinds,
                          p_id => p_id);
  IF v_result ? 'refusal' THEN
    PERFORM ledger_raise(v_result->'refusal');
  END IF;
  -- Audit rows other than the ledger's one describe the same transaction.
  PERFORM ledger_audit(p_actor, (SELECT jsonb_agg(a) FROM jsonb_array_elements(p_audit) a
                                  WHERE NOT coalesce((a->>'ledger')::boolean, false)),
                       v_result->'transaction'->>'id', NULL, NULL);
  RETURN v_result->'transaction';
END $$;

-- Holds ---------------------------------------------------------------------------------

-- A balance's version counts the entries that moved it (each entry records the version it
-- made); a hold changes ``held`` only, so it no longer bumps it.
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
  IF (NEW.id, NEW.account_id, NEW.currency, NEW.amount, NEW.expires_at, NEW.created_at, NEW.actor_id)
     IS DISTINCT FROM
     (OLD.id, OLD.account_id, OLD.currency, OLD.amount, OLD.expires_at, OLD.created_at, OLD.actor_id) THEN
    RAISE EXCEPTION 'hold %: only its resolution may change', OLD.id USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status = 'active' THEN
    RAISE EXCEPTION 'hold %: an update must resolve it (posted, voided or expired)', OLD.id
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status = 'posted' AND clock_timestamp() >= OLD.expires_at THEN
    RAISE EXCEPTION 'hold % expired at %; it can no longer be captured', OLD.id, OLD.expires_at
      USING ERRCODE = 'LLST0';
  END IF;
  UPDATE balances b SET held = b.held - OLD.amount WHERE b.account_id = OLD.account_id;
  RETURN NEW;
END $$;

-- A hold as the API shows it.
CREATE FUNCTION api_hold(h holds) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', h.id, 'account_id', h.account_id, 'amount', api_money(h.amount, h.currency), 'status', h.status,
    'captured_amount', CASE WHEN h.captured_amount IS NOT NULL THEN api_money(h.captured_amount, h.currency) END,
    'transaction_id', h.transaction_id, 'expires_at', api_time(h.expires_at), 'description', h.description,
    'created_at', api_time(h.created_at));
$$;

-- Place a hold, or say why not: {"hold": <row as jsonb>} or {"refusal": <problem>}.
CREATE FUNCTION ledger_hold_place(
  p_account uuid, p_currency text, p_amount numeric, p_expires_at timestamptz, p_actor jsonb,
  p_audit jsonb DEFAULT NULL, p_owner uuid DEFAULT NULL, p_description text DEFAULT NULL, p_metadata jsonb DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  h holds;
  r record;
BEGIN
  PERFORM 1 FROM balances b WHERE b.account_id = p_account AND NOT b.hot FOR UPDATE;
  SELECT ac.currency, ac.status, ac.owner_id, b.hot, b.posted, b.held INTO r
    FROM accounts ac JOIN balances b ON b.account_id = ac.id WHERE ac.id = p_account;
  IF NOT FOUND OR (p_owner IS NOT NULL AND r.owner_id IS DISTINCT FROM p_owner) THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('account %s not found', p_account)));
  END IF;
  IF r.hot THEN
    RETURN jsonb_build_object('refusal', api_problem('validation_error', 'holds are placed on wallet accounts only'));
  END IF;
  IF r.currency <> p_currency THEN
    RETURN jsonb_build_object('refusal', api_problem('validation_error',
      format('account %s holds %s, not %s', p_account, r.currency, p_currency)));
  END IF;
  IF r.status <> 'active' THEN
    RETURN jsonb_build_object('refusal', api_problem('conflict',
      format('account %s is %s; no new holds can be placed on it', p_account, r.status)));
  END IF;
  IF r.posted - r.held < p_amount THEN
    RETURN jsonb_build_object('refusal', api_problem('insufficient_funds',
      format('account %s has %s %s available; this hold needs %s', p_account, r.posted - r.held, r.currency, p_amount)));
  END IF;
  INSERT INTO holds (account_id, currency, amount, expires_at, description, metadata, actor_id)
  VALUES (p_account, p_currency, p_amount, p_expires_at, p_description, coalesce(p_metadata, '{}'::jsonb),
          (p_actor->>'id')::uuid)
  RETURNING * INTO h;
  IF p_audit IS NOT NULL THEN
    PERFORM ledger_audit(p_actor, jsonb_build_array(p_audit), h.id::text,
                         jsonb_build_object('balance', jsonb_build_object('posted', r.posted, 'held', r.held)),
                         jsonb_build_object('hold', ledger_hold_json(h),
                                            'balance', jsonb_build_object('posted', r.posted, 'held', r.held + p_amount)));
  END IF;
  RETURN jsonb_build_object('hold', to_jsonb(h));
END $$;

-- Capture (post) an active hold, in full or in part, to another account, or say why not.
-- The remainder is released: a hold is captured once. The posting runs for p_owner, so a
-- foreign destination gets the answers a transfer to it gets.
CREATE FUNCTION ledger_hold_post(
  p_hold uuid, p_to uuid, p_amount numeric, p_actor jsonb, p_audit jsonb DEFAULT NULL, p_owner uuid DEFAULT NULL,
  p_credit_kinds text[] DEFAULT NULL, p_description text DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  h        holds;
  v_amt    numeric;
  v_before jsonb;
  v_post   jsonb;
BEGIN
  SELECT * INTO h FROM holds WHERE id = p_hold FOR UPDATE;
  IF NOT FOUND OR (p_owner IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM accounts WHERE id = h.account_id AND owner_id = p_owner)) THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('hold %s not found', p_hold)));
  END IF;
  IF h.status <> 'active' THEN
    RETURN jsonb_build_object('refusal', api_problem('invalid_state_transition',
      format('hold %s is %s; only an active hold can be captured', p_hold, h.status)));
  END IF;
  IF clock_timestamp() >= h.expires_at THEN
    RETURN jsonb_build_object('refusal', api_problem('invalid_state_transition',
      format('hold %s expired at %s; it can no longer be captured', p_hold, h.expires_at)));
  END IF;
  v_amt := coalesce(p_amount, h.amount);
  IF v_amt <= 0 OR v_amt > h.amount THEN
    RETURN jsonb_build_object('refusal', api_problem('validation_error',
      format('capture amount %s must be more than zero and at most the held %s', v_amt, h.amount)));
  END IF;
  IF p_to = h.account_id THEN
    RETURN jsonb_build_object('refusal', api_problem('validation_error',
      'a hold is captured to another account; void it to release it'));
  END IF;
  v_before := ledger_hold_json(h);
  v_post := ledger_post(
    p_kind => 'hold_capture', p_accounts => ARRAY[h.account_id, p_to], p_currencies => ARRAY[h.currency, h.currency],
    p_amounts => ARRAY[-v_amt, v_amt], p_actor => p_actor, p_description => coalesce(p_description, h.description),
    p_metadata => jsonb_build_object('hold_id', h.id), p_owner => p_owner, p_credit_kinds => p_credit_kinds,
    p_capture => jsonb_build_object('hold', h.id, 'amount', v_amt));
  IF v_post ? 'refusal' THEN
    RETURN v_post;
  END IF;
  SELECT * INTO h FROM holds WHERE id = p_hold;
  IF p_audit IS NOT NULL THEN
    PERFORM ledger_audit(p_actor, jsonb_build_array(p_audit), h.id::text, jsonb_build_object('hold', v_before),
                         jsonb_build_object('hold', ledger_hold_json(h), 'transaction', v_post->'transaction'));
  END IF;
  RETURN jsonb_build_object('hold', to_jsonb(h), 'transaction', v_post->'transaction');
END $$;

-- Void an active hold (its amount is available again; nothing moves), or say why not.
-- The reason is kept on the hold and in the audit trail.
CREATE FUNCTION ledger_hold_release(
  p_hold uuid, p_actor jsonb, p_audit jsonb DEFAULT NULL, p_owner uuid DEFAULT NULL, p_reason text DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  h holds;
  v_before jsonb;
BEGIN
  SELECT * INTO h FROM holds WHERE id = p_hold FOR UPDATE;
  IF NOT FOUND OR (p_owner IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM accounts WHERE id = h.account_id AND owner_id = p_owner)) THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('hold %s not found', p_hold)));
  END IF;
  IF h.status <> 'active' THEN
    RETURN jsonb_build_object('refusal', api_problem('invalid_state_transition',
      format('hold %s is %s; only an active hold can be voided', p_hold, h.status)));
  END IF;
  v_before := ledger_hold_json(h);
  UPDATE holds SET status = 'voided', resolved_at = clock_timestamp(),
                   metadata = CASE WHEN p_reason IS NULL THEN metadata
                                   ELSE metadata || jsonb_build_object('void_reason', p_reason) END
   WHERE id = p_hold RETURNING * INTO h;
  IF p_audit IS NOT NULL THEN
    PERFORM ledger_audit(p_actor, jsonb_build_array(p_audit || jsonb_build_object('metadata',
                           coalesce(p_audit->'metadata', '{}'::jsonb) || jsonb_strip_nulls(jsonb_build_object('reason', p_reason)))),
                         h.id::text, jsonb_build_object('hold', v_before), jsonb_build_object('hold', ledger_hold_json(h)));
  END IF;
  RETURN jsonb_build_object('hold', to_jsonb(h));
END $$;

-- The raising forms the Python domain calls (ledgerline.ledger.holds), same signatures as
-- before, each over its core.
CREATE OR REPLACE FUNCTION ledger_hold_create(
  p_account uuid, p_currency text, p_amount numeric, p_expires_at timestamptz, p_actor jsonb,
  p_audit jsonb DEFAULT NULL, p_owner uuid DEFAULT NULL, p_description text DEFAULT NULL, p_metadata jsonb DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v jsonb := ledger_hold_place(p_account => p_account, p_currency => p_currency, p_amount => p_amount,
                               p_expires_at => p_expires_at, p_actor => p_actor, p_audit => p_audit->0,
                               p_owner => p_owner, p_description => p_description, p_metadata => p_metadata);
BEGIN
  IF v ? 'refusal' THEN
    PERFORM ledger_raise(v->'refusal');
  END IF;
  RETURN ledger_hold_json(jsonb_populate_record(NULL::holds, v->'hold'));
END $$;

CREATE OR REPLACE FUNCTION ledger_hold_capture(
  p_hold uuid, p_to uuid, p_amount numeric, p_actor jsonb, p_audit jsonb DEFAULT NULL, p_owner uuid DEFAULT NULL,
  p_credit_kinds text[] DEFAULT NULL, p_description text DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v jsonb := ledger_hold_post(p_hold => p_hold, p_to => p_to, p_amount => p_amount, p_actor => p_actor,
                              p_audit => p_audit->0, p_owner => p_owner, p_credit_kinds => p_credit_kinds,
                              p_description => p_description);
BEGIN
  IF v ? 'refusal' THEN
    PERFORM ledger_raise(v->'refusal');
  END IF;
  RETURN ledger_hold_json(jsonb_populate_record(NULL::holds, v->'hold')) || jsonb_build_object('transaction', v->'transaction');
END $$;

CREATE OR REPLACE FUNCTION ledger_hold_void(p_hold uuid, p_actor jsonb, p_audit jsonb DEFAULT NULL, p_owner uuid DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v jsonb := ledger_hold_release(p_hold => p_hold, p_actor => p_actor, p_audit => p_audit->0, p_owner => p_owner);
BEGIN
  IF v ? 'refusal' THEN
    PERFORM ledger_raise(v->'refusal');
  END IF;
  RETURN ledger_hold_json(jsonb_populate_record(NULL::holds, v->'hold'));
END $$;

-- Reversals -----------------------------------------------------------------------------

-- The mirror transaction of a posted one (once), or why not. A reversal is not reversed.
CREATE FUNCTION ledger_reversal(p_transaction uuid, p_reason text, p_actor jsonb, p_audit jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  t transactions;
  v_by uuid;
  v_accounts uuid[];
  v_currencies text[];
  v_amounts numeric[];
  v_types text[];
  v_counterparts uuid[];
BEGIN
  SELECT * INTO t FROM transactions WHERE id = p_transaction;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('transaction %s not found', p_transaction)));
  END IF;
  IF t.kind = 'reversal' THEN
    RETURN jsonb_build_object('refusal', api_problem('invalid_state_transition',
      format('transaction %s is a reversal; reversals are not reversed (post a new transaction instead)', p_transaction)));
  END IF;
  SELECT id INTO v_by FROM transactions WHERE reverses = p_transaction;
  IF FOUND THEN
    RETURN jsonb_build_object('refusal', api_problem('invalid_state_transition',
      format('transaction %s was already reversed by %s', p_transaction, v_by)));
  END IF;
  SELECT array_agg(account_id ORDER BY created_at, id), array_agg(currency ORDER BY created_at, id),
         array_agg(-amount ORDER BY created_at, id), array_agg('reversal'::text ORDER BY created_at, id),
         array_agg(counterpart_id ORDER BY created_at, id)
    INTO v_accounts, v_currencies, v_amounts, v_types, v_counterparts
    FROM entries WHERE transaction_id = p_transaction;
  RETURN ledger_post(p_kind => 'reversal', p_accounts => v_accounts, p_currencies => v_currencies,
                     p_amounts => v_amounts, p_actor => p_actor, p_entry_types => v_types,
                     p_counterparts => v_counterparts, p_audit => p_audit, p_description => p_reason,
                     p_metadata => jsonb_build_object('reason', p_reason), p_reverses => p_transaction,
                     p_allow_frozen => true);
END $$;

CREATE OR REPLACE FUNCTION ledger_reverse(p_transaction uuid, p_reason text, p_actor jsonb, p_audit jsonb DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v jsonb := ledger_reversal(p_transaction => p_transaction, p_reason => p_reason, p_actor => p_actor,
                             p_audit => p_audit->0);
BEGIN
  IF v ? 'refusal' THEN
    PERFORM ledger_raise(v->'refusal');
  END IF;
  RETURN v->'transaction';
END $$;

-- Money operations: what an HTTP money request runs -----------------------------------

-- A posted transaction as the API shows it (GET /v1/transfers/{id} and reversals).
CREATE FUNCTION api_transaction(p_transaction jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', p_transaction->'id', 'kind', p_transaction->'kind', 'status', 'posted',
    'description', p_transaction->'description', 'reverses', p_transaction->'reverses', 'reversed_by', NULL,
    'entries', (SELECT jsonb_agg(jsonb_build_object(
                  'account_id', e->'account_id', 'id', e->'id', 'transaction_id', p_transaction->'id',
                  'amount', api_money((e->>'amount')::numeric, e->>'currency'), 'entry_type', e->'entry_type',
                  'balance_after', CASE WHEN e->>'balance_after' IS NOT NULL
                                        THEN api_money((e->>'balance_after')::numeric, e->>'currency') END,
                  'created_at', api_time((e->>'created_at')::timestamptz))
                  ORDER BY (e->>'amount')::numeric)
                  FROM jsonb_array_elements(p_transaction->'entries') e),
    'created_at', api_time((p_transaction->>'created_at')::timestamptz));
$$;

-- Run one money operation for an admitted caller: {"status", "body"}; a refusal is
-- {"status": <4xx>, "body": <problem>} and is audited (p_args.audit.failed), never raised.
-- p_args: the operation's arguments as the handler sent them (amounts as text), with
--   owner_id (the caller, on user routes), credit_kinds, status (of a success), audit
--   {done, failed, category} and request (as sent, for the audit trail); all set by
--   ledgerline.ledger.operations.
CREATE FUNCTION money_op(p_op text, p_actor jsonb, p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_owner  uuid := (p_args->>'owner_id')::uuid;
  v_kinds  text[];
  v_done   jsonb := jsonb_build_object('action', p_args->'audit'->>'done', 'category', p_args->'audit'->>'category',
                                       'metadata', jsonb_build_object('request', p_args->'request'));
  v_amount jsonb;
  v_result jsonb;
  v_body   jsonb;
  v_status integer := coalesce((p_args->>'status')::integer, 201);
  v_currency text;
  h        holds;
BEGIN
  IF jsonb_typeof(p_args->'credit_kinds') = 'array' THEN
    v_kinds := ARRAY(SELECT jsonb_array_elements_text(p_args->'credit_kinds'));
  END IF;
  CASE p_op
  WHEN 'transfer' THEN
    v_amount := ledger_amount(p_args->>'amount', p_args->>'currency');
    IF v_amount ? 'problem' THEN
      v_result := jsonb_build_object('refusal', v_amount->'problem');
    ELSIF p_args->>'from_account_id' = p_args->>'to_account_id' THEN
      v_result := jsonb_build_object('refusal', api_problem('validation_error',
        'from_account_id and to_account_id are the same account',
        jsonb_build_array(jsonb_build_object('field', 'to_account_id', 'message', 'send money to a different account'))));
    ELSE
      v_result := ledger_post(
        p_kind => 'transfer',
        p_accounts => ARRAY[(p_args->>'from_account_id')::uuid, (p_args->>'to_account_id')::uuid],
        p_currencies => ARRAY[p_args->>'currency', p_args->>'currency'],
        p_amounts => ARRAY[-(v_amount->>'amount')::numeric, (v_amount->>'amount')::numeric],
        p_actor => p_actor, p_description => p_args->>'description', p_owner => v_owner, p_credit_kinds => v_kinds,
        p_audit => v_done || '{"resource_type": "transfer"}');
      IF v_result ? 'transaction' THEN
        v_body := jsonb_build_object(
          'id', v_result->'transaction'->'id', 'from_account_id', p_args->'from_account_id',
          'to_account_id', p_args->'to_account_id', 'amount', api_money((v_amount->>'amount')::numeric, p_args->>'currency'),
          'status', 'posted', 'description', p_args->'description', 'reversed_by', NULL,
          'created_at', api_time((v_result->'transaction'->>'created_at')::timestamptz));
      END IF;
    END IF;

  WHEN 'hold_create' THEN
    v_amount := ledger_amount(p_args->>'amount', p_args->>'currency');
    IF v_amount ? 'problem' THEN
      v_result := jsonb_build_object('refusal', v_amount->'problem');
    ELSE
      v_result := ledger_hold_place(
        p_account => (p_args->>'account_id')::uuid, p_currency => p_args->>'currency',
        p_amount => (v_amount->>'amount')::numeric,
        p_expires_at => clock_timestamp() + (p_args->>'expires_in_seconds')::integer * interval '1 second',
        p_actor => p_actor, p_audit => v_done || '{"resource_type": "hold"}', p_owner => v_owner,
        p_description => p_args->>'description');
      IF v_result ? 'hold' THEN
        v_body := api_hold(jsonb_populate_record(NULL::holds, v_result->'hold'));
      END IF;
    END IF;

  WHEN 'hold_capture' THEN
    SELECT h2.currency INTO v_currency FROM holds h2 JOIN accounts a ON a.id = h2.account_id
     WHERE h2.id = (p_args->>'hold_id')::uuid AND (v_owner IS NULL OR a.owner_id = v_owner);
    IF NOT FOUND THEN
      v_result := jsonb_build_object('refusal', api_problem('not_found', format('hold %s not found', p_args->>'hold_id')));
    ELSE
      v_amount := CASE WHEN p_args->>'amount' IS NULL THEN '{}'::jsonb ELSE ledger_amount(p_args->>'amount', v_currency) END;
      IF v_amount ? 'problem' THEN
        v_result := jsonb_build_object('refusal', v_amount->'problem');
      ELSE
        v_result := ledger_hold_post(
          p_hold => (p_args->>'hold_id')::uuid, p_to => (p_args->>'to_account_id')::uuid,
          p_amount => (v_amount->>'amount')::numeric, p_actor => p_actor,
          p_audit => v_done || '{"resource_type": "hold"}', p_owner => v_owner, p_credit_kinds => v_kinds);
        IF v_result ? 'hold' THEN
          v_body := api_hold(jsonb_populate_record(NULL::holds, v_result->'hold'));
        END IF;
      END IF;
    END IF;

  WHEN 'hold_void' THEN
    v_result := ledger_hold_release(p_hold => (p_args->>'hold_id')::uuid, p_actor => p_actor,
                                    p_audit => v_done || '{"resource_type": "hold"}', p_owner => v_owner,
                                    p_reason => p_args->>'reason');
    IF v_result ? 'hold' THEN
      v_body := api_hold(jsonb_populate_record(NULL::holds, v_result->'hold'));
    END IF;

  WHEN 'adjust' THEN
    v_amount := ledger_amount(p_args->>'amount', p_args->>'currency');
    IF v_amount ? 'problem' THEN
      v_result := jsonb_build_object('refusal', v_amount->'problem');
    ELSIF length(btrim(coalesce(p_args->>'reason', ''))) NOT BETWEEN 3 AND 500 THEN
      v_result := jsonb_build_object('refusal', api_problem('validation_error', 'a reason is required',
        jsonb_build_array(jsonb_build_object('field', 'reason', 'message', 'say why, in 3 to 500 characters'))));
    ELSE
      v_result := ledger_post(
        p_kind => 'adjustment',
        p_accounts => ARRAY[(p_args->>'account_id')::uuid,
                            (SELECT a.id FROM accounts a WHERE a.kind = 'adjustments' AND a.currency = p_args->>'currency'
                               AND a.owner_id IS NULL)],
        p_currencies => ARRAY[p_args->>'currency', p_args->>'currency'],
        p_amounts => CASE WHEN p_args->>'direction' = 'credit'
                          THEN ARRAY[(v_amount->>'amount')::numeric, -(v_amount->>'amount')::numeric]
                          ELSE ARRAY[-(v_amount->>'amount')::numeric, (v_amount->>'amount')::numeric] END,
        p_actor => p_actor, p_description => btrim(p_args->>'reason'),
        p_metadata => jsonb_build_object('reason', btrim(p_args->>'reason'), 'direction', p_args->>'direction'),
        p_allow_frozen => true,
        p_audit => v_done || jsonb_build_object('resource_type', 'transaction', 'metadata', jsonb_build_object(
                     'request', p_args->'request', 'reason', btrim(p_args->>'reason'),
                     'direction', p_args->>'direction', 'account_id', p_args->>'account_id')));
      IF v_result ? 'transaction' THEN
        v_body := jsonb_build_object(
          'transaction_id', v_result->'transaction'->'id', 'account_id', p_args->'account_id',
          'amount', api_money((v_amount->>'amount')::numeric, p_args->>'currency'), 'direction', p_args->'direction',
          'reason', p_args->'reason', 'created_at', api_time((v_result->'transaction'->>'created_at')::timestamptz));
      END IF;
    END IF;

  WHEN 'reverse' THEN
    v_result := ledger_reversal(
      p_transaction => (p_args->>'transaction_id')::uuid, p_reason => p_args->>'reason', p_actor => p_actor,
      p_audit => v_done || jsonb_build_object('resource_type', 'transaction', 'resource_id', p_args->>'transaction_id',
                                              'metadata', jsonb_build_object('reason', p_args->>'reason')));
    IF v_result ? 'transaction' THEN
      v_body := api_transaction(v_result->'transaction') || jsonb_build_object('reason', p_args->'reason');
    END IF;
  ELSE
    RAISE EXCEPTION 'unknown money operation %', p_op USING ERRCODE = 'LLVL0';
  END CASE;

  IF v_result ? 'refusal' THEN
    PERFORM ledger_audit(p_actor, jsonb_build_array(jsonb_build_object(
      'action', p_args->'audit'->>'failed', 'category', p_args->'audit'->>'category', 'resource_type', p_op,
      'metadata', jsonb_build_object('request', p_args->'request', 'error', jsonb_build_object(
        'status', v_result->'refusal'->'status', 'code', v_result->'refusal'->'code',
        'detail', v_result->'refusal'->'detail')))), NULL, NULL, NULL);
    RETURN jsonb_build_object('status', (v_result->'refusal'->>'status')::integer, 'body', v_result->'refusal');
  END IF;
  RETURN jsonb_build_object('status', v_status, 'body', v_body);
END $$;

-- One money request, one statement: admit the caller (auth_admit), claim the caller's
-- Idempotency-Key, run the operation (money_op), store its response, return it. In
-- autocommit this is the request's only round trip and transaction.
--
-- * the same key and request again: the stored response (replayed), nothing runs again;
-- * the same key, another request: 422 idempotency_key_reused (not stored);
-- * the same key while the first is still running: this waits on its claim for at most
--   p_wait_ms, then replays it, or fails with lock_not_available (the caller answers 409);
-- * anything raised (a bug, an outage) rolls the claim back with everything else.
-- outcome: ran | replayed | mismatch | unauthorized | forbidden | rate_limited.
CREATE FUNCTION money_call(
  p_claims jsonb, p_policy jsonb, p_checks jsonb, p_actor jsonb, p_key uuid, p_request_hash text,
  p_wait_ms integer, p_op text, p_args jsonb
) RETURNS TABLE (status integer, body text, content_type text, outcome text, retry_after integer)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = public, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  v_admit  jsonb := auth_admit(p_claims, p_policy, p_checks, p_actor);
  v_scope  text := p_claims->>'sub';
  v_actor  jsonb;
  v_saved  text;
  v_taken  boolean;
  v_result jsonb;
  k        record;
BEGIN
  IF v_admit->>'outcome' <> 'ok' THEN
    RETURN QUERY SELECT p.status, p.body::text, 'application/problem+json', v_admit->>'outcome',
                        (v_admit->>'retry_after')::integer
      FROM (SELECT (api_problem(v_admit->>'outcome', v_admit->>'detail')->>'status')::integer AS status,
                   api_problem(v_admit->>'outcome', v_admit->>'detail') AS body) p;
    RETURN;
  END IF;
  v_actor := p_actor || jsonb_build_object(
    'id', v_scope, 'type', CASE WHEN p_claims->>'typ' = 'api_key' THEN 'api_key' ELSE v_admit->>'role' END);

  v_saved := current_setting('lock_timeout');
  PERFORM set_config('lock_timeout', p_wait_ms || 'ms', true);
  INSERT INTO idempotency_keys AS i (scope, key, request_hash)
  VALUES (v_scope, p_key, p_request_hash)
  ON CONFLICT (scope, key) DO UPDATE
     SET request_hash = EXCLUDED.request_hash, status_code = NULL, response_body = NULL, content_type = NULL,
         created_at = now(), expires_at = now() + interval '24 hours'
   WHERE i.expires_at <= now();
  v_taken := FOUND;
  PERFORM set_config('lock_timeout', v_saved, true);

  IF NOT v_taken THEN
    SELECT i.request_hash, i.status_code, i.response_body, i.content_type INTO k
      FROM idempotency_keys i WHERE i.scope = v_scope AND i.key = p_key;
    IF k.request_hash <> p_request_hash THEN
      RETURN QUERY SELECT 422, api_problem('idempotency_key_reused',
        'this Idempotency-Key was already used for a different request; use a new key for a new operation')::text,
        'application/problem+json', 'mismatch', NULL::integer;
      RETURN;
    END IF;
    PERFORM ledger_audit(v_actor, jsonb_build_array(jsonb_build_object(
      'action', 'idempotency.replayed', 'category', 'financial', 'resource_type', 'idempotency_key',
      'resource_id', p_key, 'metadata', jsonb_build_object('scope', v_scope, 'status', k.status_code))), NULL, NULL, NULL);
    RETURN QUERY SELECT k.status_code::integer, k.response_body, k.content_type, 'replayed', NULL::integer;
    RETURN;
  END IF;

  v_result := money_op(p_op, v_actor, p_args);
  UPDATE idempotency_keys i
     SET status_code = (v_result->>'status')::smallint, response_body = (v_result->'body')::text,
         content_type = CASE WHEN (v_result->>'status')::integer >= 400 THEN 'application/problem+json'
                             ELSE 'application/json' END
   WHERE i.scope = v_scope AND i.key = p_key
  RETURNING i.status_code, i.response_body, i.content_type INTO k;
  RETURN QUERY SELECT k.status_code::integer, k.response_body, k.content_type, 'ran', NULL::integer;
END $$;

-- Who may call what -----------------------------------------------------------------------

REVOKE ALL ON FUNCTION
  ledger_post(text, uuid[], text[], numeric[], jsonb, text[], uuid[], jsonb, text, text, jsonb, uuid, boolean, uuid,
              text[], uuid, jsonb),
  ledger_hold_place(uuid, text, numeric, timestamptz, jsonb, jsonb, uuid, text, jsonb),
  ledger_hold_post(uuid, uuid, numeric, jsonb, jsonb, uuid, text[], text),
  ledger_hold_release(uuid, jsonb, jsonb, uuid, text),
  ledger_reversal(uuid, text, jsonb, jsonb),
  money_op(text, jsonb, jsonb),
  money_call(jsonb, jsonb, jsonb, jsonb, uuid, text, integer, text, jsonb),
  auth_admit(jsonb, jsonb, jsonb, jsonb)
FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  ledger_post(text, uuid[], text[], numeric[], jsonb, text[], uuid[], jsonb, text, text, jsonb, uuid, boolean, uuid,
              text[], uuid, jsonb),
  ledger_hold_place(uuid, text, numeric, timestamptz, jsonb, jsonb, uuid, text, jsonb),
  ledger_hold_post(uuid, uuid, numeric, jsonb, jsonb, uuid, text[], text),
  ledger_hold_release(uuid, jsonb, jsonb, uuid, text),
  ledger_reversal(uuid, text, jsonb, jsonb),
  money_op(text, jsonb, jsonb),
  money_call(jsonb, jsonb, jsonb, jsonb, uuid, text, integer, text, jsonb),
  auth_admit(jsonb, jsonb, jsonb, jsonb)
TO ledgerline_app;
