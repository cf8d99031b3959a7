-- Raise a refusal for the callers that want an exception (ledgerline.ledger.sql maps the
-- LL SQLSTATEs back to the same domain errors): LLNF0 not found, LLIF0 insufficient
-- funds, LLCF0 conflict (account frozen or closed), LLST0 invalid state transition,
-- LLVL0 invalid request.
CREATE OR REPLACE FUNCTION ledger_raise(p_problem jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING MESSAGE = p_problem->>'detail',
    ERRCODE = CASE p_problem->>'code'
                WHEN 'not_found' THEN 'LLNF0' WHEN 'insufficient_funds' THEN 'LLIF0'
                WHEN 'conflict' THEN 'LLCF0' WHEN 'invalid_state_transition' THEN 'LLST0'
                ELSE 'LLVL0' END;
END $$;
