-- Where a withdrawal to a payout account goes (issue 19): one of the owner's live payout
-- accounts, or a refusal ({"refusal": <problem>}, returned, never raised, so that the
-- money statement stores and answers it). Called by withdrawal_request inside money_op,
-- so the cooling-off check runs in the same statement as the hold.
--
-- Another user's, an unknown or a removed payout account is a 404 (nothing says which).
-- The row is locked FOR SHARE: a removal racing this request waits for it, or wins and
-- this request sees the account removed; never a withdrawal to an account removed first.
--
-- Cooling-off (an account-takeover defence): an account added less than
-- p_cooling.hours ago cannot receive more than p_cooling.limit (the currency's, in major
-- units; null: no limit) in one withdrawal: 409 payout_account_cooling_off.
--
-- The destination carries no ciphertext: the number stays sealed in the payout
-- account's row, bound to it; the withdrawal refers to that row (payout_account_id).
CREATE OR REPLACE FUNCTION payout_account_destination(
  p_payout_account uuid, p_owner uuid, p_amount numeric, p_cooling jsonb
) RETURNS jsonb
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
  pa       payout_accounts;
  v_hours  numeric := coalesce((p_cooling->>'hours')::numeric, 0);
  v_limit  numeric := (p_cooling->>'limit')::numeric;
  v_until  timestamptz;
BEGIN
  SELECT * INTO pa FROM payout_accounts
   WHERE id = p_payout_account AND user_id = p_owner AND removed_at IS NULL
     FOR SHARE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('refusal', api_problem('not_found',
      format('payout account %s not found', p_payout_account)));
  END IF;
  v_until := pa.created_at + v_hours * interval '1 hour';
  IF v_limit IS NOT NULL AND p_amount > v_limit AND v_until > clock_timestamp() THEN
    RETURN jsonb_build_object('refusal', api_problem('conflict', format(
      'payout account %s was added less than %s hours ago: until %s it can receive at most %s in one withdrawal',
      pa.id, v_hours, api_time(v_until), v_limit))
      || '{"code": "payout_account_cooling_off", "title": "Payout account in its cooling-off period", "type": "https://docs.ledgerline.dev/problems/payout-account-cooling-off"}'
      || jsonb_build_object('cooling_off_until', api_time(v_until)));
  END IF;
  RETURN jsonb_build_object('destination', jsonb_build_object(
    'payout_account_id', pa.id, 'provider', pa.provider, 'bank_code', pa.bank_code,
    'account_name', pa.account_name, 'account_number_ciphertext', NULL,
    'account_number_blind_index', encode(pa.account_number_blind_index, 'hex'),
    'account_number_last4', pa.account_number_last4));
END $$;

-- Called only inside the SECURITY DEFINER money routines (withdrawal_request), never by
-- the application role directly.
REVOKE ALL ON FUNCTION payout_account_destination(uuid, uuid, numeric, jsonb) FROM PUBLIC;
