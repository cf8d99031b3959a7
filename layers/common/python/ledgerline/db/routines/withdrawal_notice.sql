-- The notification event (notifications queue) telling a user what became of their
-- withdrawal: ids, the amount and the decision, never the destination's account number
-- (only its last four) nor any secret. ledgerline.notifications renders it from its own
-- subject and message.
CREATE OR REPLACE FUNCTION withdrawal_notice(w withdrawals) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'type', 'withdrawal.' || w.status, 'user_id', w.user_id, 'withdrawal_id', w.id,
    'subject', CASE w.status WHEN 'paid' THEN 'Your withdrawal was paid'
                             WHEN 'failed' THEN 'Your withdrawal could not be paid'
                             ELSE 'Your withdrawal was not approved' END,
    'message', format('Your withdrawal %s of %s %s to the account ending %s %s.', w.id,
                      api_money(w.amount, w.currency)->>'amount', w.currency, w.account_number_last4,
                      CASE w.status WHEN 'paid' THEN 'was paid'
                                    WHEN 'failed' THEN 'could not be paid; the money is back in your wallet'
                                    ELSE 'was not approved; the money is available in your wallet again' END)
                 || CASE WHEN w.reason IS NULL THEN '' ELSE format(' Reason: %s', w.reason) END);
$$;

-- Nobody may call it but its owner (and the owner's SECURITY DEFINER functions).
REVOKE ALL ON FUNCTION withdrawal_notice(withdrawals) FROM PUBLIC;
