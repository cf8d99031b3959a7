-- The fee Ledgerline charges on p_amount of p_currency for a transaction of p_kind
-- (escrow_release, ...), from fee_schedules; 0 when the currency and kind have none.
--
-- THE RULE (stated here once; docs/api.md cites it):
--
--   fee = min(amount, round_half_up(clamp(amount * percent / 100 + fixed, minimum, maximum), minor_units))
--
-- percent% of the amount plus the fixed part, raised to the minimum and lowered to the
-- maximum (none: no upper bound), rounded HALF-UP (half away from zero; fees are never
-- negative) to the currency's minor units (currencies.minor_units), and never more than
-- the amount. The amount is itself a whole number of minor units, so the rounded fee
-- capped at it still is: the seller gets amount - fee, and fee + seller amount is the
-- amount exactly, with nothing lost or made up by rounding. A maximum finer than the
-- minor unit can be exceeded by less than half a unit (it is compared before rounding).
--
-- STABLE: it reads fee_schedules, which administrators change; a release quotes the fee
-- in its own transaction, so the fee charged is the schedule at that moment. PL/pgSQL,
-- not SQL: a SQL function with SET options is never inlined and is planned on every call
-- (every release runs it); PL/pgSQL keeps the plan.
CREATE OR REPLACE FUNCTION fee_quote(p_kind text, p_currency text, p_amount numeric) RETURNS numeric
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
  RETURN coalesce((
    SELECT least(p_amount,
                 round(least(greatest(p_amount * s.percent / 100 + s.fixed, s.minimum),
                             coalesce(s.maximum, greatest(p_amount * s.percent / 100 + s.fixed, s.minimum))),
                       c.minor_units))
      FROM fee_schedules s JOIN currencies c ON c.code = s.currency
     WHERE s.currency = p_currency AND s.transaction_kind = p_kind), 0)::numeric(19,4);
END $$;

-- Callable by the application role (a quote before a release, the fee admin's preview)
-- and the owner, not by PUBLIC.
REVOKE ALL ON FUNCTION fee_quote(text, text, numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fee_quote(text, text, numeric) TO ledgerline_app;
