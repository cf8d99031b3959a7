-- The statuses an escrow may move to now, for one party ('buyer', 'seller' or 'admin'; any
-- other value: none): the edges of escrow_transitions from its status that the party may
-- take, a dispute only while the window after funding is open. The one place this rule is
-- written: escrow_transition (the answer and the 409's allowed_transitions), escrow_open
-- and the reads (ledgerline.escrow.reads) all call it.
CREATE OR REPLACE FUNCTION escrow_allowed(e escrows, p_party text, p_window interval,
                                          p_now timestamptz DEFAULT clock_timestamp()) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  RETURN coalesce((
    SELECT jsonb_agg(a.to_status ORDER BY a.to_status) FROM escrow_transitions a
     WHERE a.from_status = e.status AND p_party = ANY (a.parties)
       AND (a.action <> 'dispute' OR e.funded_at + p_window > p_now)), '[]'::jsonb);
END $$;

-- Callable by the application role (the escrow reads) and the owner.
REVOKE ALL ON FUNCTION escrow_allowed(escrows, text, interval, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION escrow_allowed(escrows, text, interval, timestamptz) TO ledgerline_app;
