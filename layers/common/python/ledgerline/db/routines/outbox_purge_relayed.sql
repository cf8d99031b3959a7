-- The outbox's retention: delete up to p_limit rows relayed more than p_keep_days ago
-- (at least one day: outbox_guard_delete keeps younger rows whatever the caller asks).
-- It runs with the owner's rights (SECURITY DEFINER): the application role holds no
-- DELETE on the outbox, so this is the only way a row goes. Returns how many went.
CREATE OR REPLACE FUNCTION outbox_purge_relayed(p_keep_days integer, p_limit integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_count integer;
BEGIN
  DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox
     WHERE relayed_at < now() - make_interval(days => greatest(1, p_keep_days))
     ORDER BY relayed_at
     LIMIT greatest(0, p_limit)
       FOR UPDATE SKIP LOCKED);
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END $$;

REVOKE ALL ON FUNCTION outbox_purge_relayed(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outbox_purge_relayed(integer, integer) TO ledgerline_app;
