-- A bulk payout as the API shows it (docs/api.md "Bulk payouts"): its total, its approval
-- state and each item's status (its withdrawal's), destinations masked as withdrawals are.
CREATE OR REPLACE FUNCTION bulk_payout_json(b bulk_payouts) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', b.id, 'account_id', b.account_id, 'amount', api_money(b.total, b.currency), 'status', b.status,
    'item_count', b.item_count, 'approvals_required', b.approvals_required,
    'approvals', (SELECT count(*) FROM bulk_payout_approvals a WHERE a.bulk_payout_id = b.id),
    'reason', b.reason, 'created_at', api_time(b.created_at), 'decided_at', api_time(b.decided_at),
    'items', coalesce((SELECT jsonb_agg(jsonb_build_object(
                         'index', w.bulk_index, 'status', w.status, 'withdrawal_id', w.id,
                         'payout_account_id', w.payout_account_id, 'amount', api_money(w.amount, w.currency),
                         'narration', w.narration, 'reason', w.reason) ORDER BY w.bulk_index)
                         FROM withdrawals w WHERE w.bulk_payout_id = b.id), '[]'::jsonb));
$$;

REVOKE ALL ON FUNCTION bulk_payout_json(bulk_payouts) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bulk_payout_json(bulk_payouts) TO ledgerline_app;
