-- The audit shipper's first step: the batch to ship now. If a batch was chained and not
-- shipped (the shipper stopped between chaining and marking it shipped), that batch again,
-- unchanged, so that it is put to the same keys: never a gap, never a fork. Otherwise the
-- next p_limit committed audit rows in commit-safe order, chained in this transaction.
--
-- Commit-safe: only rows with xid < pg_snapshot_xmin(pg_current_snapshot()). Every
-- transaction below that horizon has ended, and a new one gets a larger xid, so the set of
-- rows below it is final; walking them in (xid, occurred_at, id) order from the last
-- chained position never skips a row whose transaction committed late.
--
-- Each row gets the next seq (gap-free: assigned under the lock on audit_ship_state, which
-- every shipper takes first), its content hash (sha256 of audit_chain_record) and its link:
-- chain_hash = sha256('<seq>:<prev_hash hex>:<content_hash hex>'), the first prev_hash 32
-- zero bytes. With it, the row's audit_chain_row_digest (taken from the same row version),
-- and the batch's digest of those. Returns {"first_seq", "last_seq", "pending"} or NULL.
CREATE OR REPLACE FUNCTION audit_chain_extend(p_limit integer) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_batch audit_ship_batches;
  v_last audit_chain;
  v_seq bigint;
  v_prev bytea;
  v_first bigint;
  v_content bytea;
  v_chain bytea;
  v_horizon xid8 := pg_snapshot_xmin(pg_current_snapshot());
  r record;
BEGIN
  PERFORM 1 FROM audit_ship_state FOR UPDATE;
  UPDATE audit_ship_state SET updated_at = now();

  SELECT * INTO v_batch FROM audit_ship_batches WHERE shipped_at IS NULL ORDER BY first_seq LIMIT 1;
  IF FOUND THEN
    RETURN jsonb_build_object('first_seq', v_batch.first_seq, 'last_seq', v_batch.last_seq, 'pending', true);
  END IF;

  SELECT * INTO v_last FROM audit_chain ORDER BY seq DESC LIMIT 1;
  v_seq := coalesce(v_last.seq, 0);
  v_prev := coalesce(v_last.chain_hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
  v_first := v_seq + 1;

  FOR r IN
    SELECT a.id, a.xid, a.occurred_at, a.xmin,
           sha256(convert_to(audit_chain_record(
             p_id => a.id, p_occurred_at => a.occurred_at, p_category => a.category, p_action => a.action,
             p_actor_id => a.actor_id, p_actor_type => a.actor_type, p_actor_ip => a.actor_ip,
             p_user_agent => a.user_agent, p_resource_type => a.resource_type, p_resource_id => a.resource_id,
             p_payload_before => a.payload_before, p_payload_after => a.payload_after,
             p_metadata => a.metadata), 'UTF8')) AS content_hash,
           audit_chain_row_digest(
             p_id => a.id, p_occurred_at => a.occurred_at, p_category => a.category, p_action => a.action,
             p_actor_id => a.actor_id, p_actor_type => a.actor_type, p_actor_ip => a.actor_ip,
             p_user_agent => a.user_agent, p_resource_type => a.resource_type, p_resource_id => a.resource_id,
             p_payload_before => a.payload_before, p_payload_after => a.payload_after,
             p_metadata => a.metadata) AS row_digest
      FROM audit_log a
     WHERE a.xid < v_horizon
       AND (v_last.seq IS NULL OR (a.xid, a.occurred_at, a.id) > (v_last.audit_xid, v_last.occurred_at, v_last.audit_id))
     ORDER BY a.xid, a.occurred_at, a.id
     LIMIT greatest(p_limit, 0)
  LOOP
    v_seq := v_seq + 1;
    v_content := r.content_hash;
    v_chain := sha256(convert_to(v_seq::text || ':' || encode(v_prev, 'hex') || ':' || encode(v_content, 'hex'), 'UTF8'));
    INSERT INTO audit_chain (seq, audit_id, audit_xid, occurred_at, batch, content_hash, prev_hash, chain_hash, row_digest, row_xmin)
    VALUES (v_seq, r.id, r.xid, r.occurred_at, v_first, v_content, v_prev, v_chain, r.row_digest, r.xmin);
    v_prev := v_chain;
  END LOOP;

  IF v_seq < v_first THEN
    RETURN NULL;
  END IF;
  INSERT INTO audit_ship_batches (first_seq, last_seq, prev_hash, head, rows_digest)
  VALUES (v_first, v_seq, coalesce(v_last.chain_hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea), v_prev,
          (SELECT sha256(string_agg(c.row_digest, ''::bytea ORDER BY c.seq)) FROM audit_chain c WHERE c.seq BETWEEN v_first AND v_seq));
  RETURN jsonb_build_object('first_seq', v_first, 'last_seq', v_seq, 'pending', false);
END $$;

REVOKE ALL ON FUNCTION audit_chain_extend(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_chain_extend(integer) TO ledgerline_app;
