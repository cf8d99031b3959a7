-- POST /v1/admin/payouts/bulk/{id}/approve, inside money_op: one administrator's approval
-- of a bulk payout (ASVS 2.3.5, the two-person rule). The row lock serialises racing
-- approvals. Refused (nothing written but the refusal's audit row): the requester
-- approving their own (403 forbidden), the same administrator twice (409 conflict: another
-- one must approve), a bulk payout already decided (409 invalid_state_transition).
-- The approval that reaches approvals_required approves every item at once
-- (bulk_payout_approve_items: holds pinned, payouts queued); an item whose hold can no
-- longer be pinned (expired) refuses the whole approval (409), nothing half approved.
-- One audit row (p_audit: bulk_payout.approved, with the approvals so far) plus, at the
-- last approval, one withdrawal.approved row per item.
CREATE OR REPLACE FUNCTION bulk_payout_approve(p_bulk uuid, p_actor jsonb, p_audit jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_admin   uuid := (p_actor->>'id')::uuid;
  v_before  jsonb;
  v_count   integer;
  v_detail  text;
  v_state   text;
  b         bulk_payouts;
BEGIN
  SELECT * INTO b FROM bulk_payouts WHERE id = p_bulk FOR UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found', format('bulk payout %s not found', p_bulk)));
  END IF;
  IF b.status <> 'pending_approval' THEN
    RETURN jsonb_build_object('refusal', api_problem('invalid_state_transition',
      format('bulk payout %s is %s; only one pending approval can be approved', p_bulk, b.status)));
  END IF;
  IF b.user_id = v_admin THEN
    RETURN jsonb_build_object('refusal', api_problem('forbidden',
      'nobody approves their own bulk payout: another administrator must'));
  END IF;
  IF EXISTS (SELECT 1 FROM bulk_payout_approvals WHERE bulk_payout_id = p_bulk AND admin_id = v_admin) THEN
    RETURN jsonb_build_object('refusal', api_problem('conflict',
      format('you approved bulk payout %s already; it needs %s approvals by different administrators',
             p_bulk, b.approvals_required)));
  END IF;
  v_before := bulk_payout_json(b);
  BEGIN
    INSERT INTO bulk_payout_approvals (bulk_payout_id, admin_id) VALUES (p_bulk, v_admin);
    SELECT count(*) INTO v_count FROM bulk_payout_approvals WHERE bulk_payout_id = p_bulk;
    IF v_count >= b.approvals_required THEN
      PERFORM bulk_payout_approve_items(p_bulk => p_bulk, p_actor => p_actor, p_category => p_audit->>'category');
      UPDATE bulk_payouts SET status = 'approved', decided_at = clock_timestamp() WHERE id = p_bulk RETURNING * INTO b;
    END IF;
  EXCEPTION WHEN SQLSTATE 'LLST0' OR SQLSTATE 'LLCF0' THEN  -- an item refused (ledger_raise): none approved
    GET STACKED DIAGNOSTICS v_detail = MESSAGE_TEXT, v_state = RETURNED_SQLSTATE;
    RETURN jsonb_build_object('refusal', api_problem(
      CASE v_state WHEN 'LLCF0' THEN 'conflict' ELSE 'invalid_state_transition' END, v_detail));
  END;
  PERFORM ledger_audit(p_actor => p_actor, p_rows => jsonb_build_array(p_audit || jsonb_build_object(
            'resource_type', 'bulk_payout', 'resource_id', p_bulk, 'subjects', jsonb_build_array(b.user_id),
            'metadata', jsonb_build_object('approvals', v_count, 'approvals_required', b.approvals_required),
            'before', jsonb_build_object('bulk_payout', v_before - 'items'),
            'after', jsonb_build_object('bulk_payout', bulk_payout_json(b) - 'items'))),
          p_resource_id => NULL, p_before => NULL, p_after => NULL);
  RETURN jsonb_build_object('bulk_payout', bulk_payout_json(b));
END $$;

REVOKE ALL ON FUNCTION bulk_payout_approve(uuid, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bulk_payout_approve(uuid, jsonb, jsonb) TO ledgerline_app;
