-- Who is calling, may they call this route, and is there budget left for it: a read
-- route's whole admission in one statement (money_call runs it first).
--
-- p_claims: what the authorizer verified (NULL on a public route): an access token's
--   {typ: access, sub, jti, sid, amr} or an API key's {typ: api_key, sub, api_key_id}.
-- p_policy: the route's rules, computed in Python from its row (ledgerline.auth.admission):
--   {roles: [...] | null, second_factor_roles: [...], key_role, forbidden, enrolment,
--   idle_seconds}.
-- p_checks: [{key, count, period, name, route}], counted only once the caller is admitted.
-- p_actor: the audit actor of a refusal ({ip, user_agent, metadata}).
-- Returns {outcome: ok|unauthorized|forbidden|rate_limited, role?, detail?, retry_after?}.
--
-- enable_seqscan: key probes only, whatever the tables' sizes (on a few hundred sessions
-- the planner chose a scan that cast the claim for every row: more than the rest of the
-- admission).
--
-- A session's use is recorded here, where its row is read anyway (last_seen_at: the
-- devices list, and the idle limit, PCI DSS 8.2.8): written only when more than a minute
-- old, so a busy session writes once a minute, not per request, and SKIP LOCKED, so a
-- request never waits for a refresh or another request holding the row. A session unused
-- longer than idle_seconds (LEDGERLINE_SESSION_IDLE_MINUTES) is refused here too; with the
-- default 15 minutes an access token (15 minutes) expires first, and the refresh that
-- follows ends the session and audits it (ledgerline.auth.sessions.refresh). As use is
-- recorded once a minute, a session may be judged idle up to a minute early, never late.
CREATE OR REPLACE FUNCTION auth_admit(p_claims jsonb, p_policy jsonb, p_checks jsonb, p_actor jsonb)
RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp SET enable_seqscan = off AS $$
DECLARE
  v_role text;
  v_sub  uuid := (p_claims->>'sub')::uuid;
  v_used boolean := false;  -- the session's use is recorded once the request is admitted
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
           s.id IS NULL OR s.revoked_at IS NOT NULL OR s.expires_at <= now() OR s.user_id <> u.id AS ended,
           s.last_seen_at <= now() - make_interval(secs => coalesce((p_policy->>'idle_seconds')::int, 900)) AS idle,
           s.last_seen_at < now() - interval '1 minute' AS unrecorded
      INTO r FROM users u LEFT JOIN sessions s ON s.id = (p_claims->>'sid')::uuid WHERE u.id = v_sub;
    IF NOT FOUND OR r.status <> 'active' THEN
      RETURN jsonb_build_object('outcome', 'unauthorized', 'detail', 'this account cannot sign in; contact support');
    END IF;
    IF r.jti_revoked OR r.ended THEN
      RETURN jsonb_build_object('outcome', 'unauthorized', 'detail', 'the session has ended; log in again');
    END IF;
    IF r.idle THEN
      RETURN jsonb_build_object('outcome', 'unauthorized', 'detail',
        format('the session was not used for more than %s minutes; log in again',
               coalesce((p_policy->>'idle_seconds')::int, 900) / 60));
    END IF;
    v_used := r.unrecorded;
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
    -- A sliding window per check (rate_limit_hit); hits is count + the refusals in a row.
    WITH over AS (
      SELECT o.spec AS c, o.hits, o.retry_after FROM rate_limit_hit(p_checks) o
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
  -- Admitted: the session was used (at most one write a minute, never waiting on a held
  -- row). A refused request (403, 429) does not keep a session from going idle.
  IF v_used THEN
    UPDATE sessions SET last_seen_at = now()
     WHERE id = (SELECT l.id FROM sessions l WHERE l.id = (p_claims->>'sid')::uuid
                    AND l.last_seen_at < now() - interval '1 minute' FOR UPDATE SKIP LOCKED);
  END IF;
  RETURN jsonb_build_object('outcome', 'ok', 'role', v_role);
END $$;

-- Callable by the application role (and the owner), not by PUBLIC.
REVOKE ALL ON FUNCTION auth_admit(jsonb, jsonb, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_admit(jsonb, jsonb, jsonb, jsonb) TO ledgerline_app;
