-- One merchant event, in the caller's transaction: the event row, one delivery per
-- endpoint of the owner subscribed to its type, and one outbox row per delivery for the
-- merchant-webhooks queue (carrying the delivery's id only: the worker reads the rest).
-- Returns the outbox ids, so a Python caller can publish them right after its commit;
-- money routines (money_op) call it in their one statement and the sweep relays them.
-- An owner without a subscribed endpoint gets nothing stored. A type not in
-- webhook_event_types is refused (foreign key), whoever calls.
CREATE OR REPLACE FUNCTION webhook_emit(p_owner uuid, p_type text, p_data jsonb) RETURNS bigint[]
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
  v_event uuid;
  v_ids bigint[];
BEGIN
  IF NOT EXISTS (SELECT FROM webhook_event_types WHERE name = p_type) THEN
    RAISE EXCEPTION 'unknown webhook event type %', p_type USING ERRCODE = 'foreign_key_violation';
  END IF;
  IF NOT EXISTS (SELECT FROM webhook_endpoints
                  WHERE owner_id = p_owner AND deleted_at IS NULL AND p_type = ANY (events)) THEN
    RETURN '{}';
  END IF;
  INSERT INTO webhook_events (owner_id, type, data) VALUES (p_owner, p_type, p_data) RETURNING id INTO v_event;
  WITH deliveries AS (
    INSERT INTO webhook_deliveries (endpoint_id, event_id)
    SELECT id, v_event FROM webhook_endpoints
     WHERE owner_id = p_owner AND deleted_at IS NULL AND p_type = ANY (events)
    RETURNING id
  ), queued AS (
    INSERT INTO outbox (queue, payload)
    SELECT 'merchant-webhooks', jsonb_build_object('delivery_id', d.id) FROM deliveries d
    RETURNING id
  )
  SELECT coalesce(array_agg(id ORDER BY id), '{}') INTO v_ids FROM queued;
  RETURN v_ids;
END $$;

REVOKE ALL ON FUNCTION webhook_emit(uuid, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook_emit(uuid, text, jsonb) TO ledgerline_app;
