-- Every posting that changed one ledger account's balance: before, after and the change, in the trail's order.
-- param account_id (uuid): the ledger account (a wallet's id)
-- param from (date): first day, UTC (YYYY-MM-DD)
-- param to (date): last day, UTC, inclusive
-- The balances are read from the payloads' text with a regular expression, not with a
-- JSON function: DuckDB reads JSON numbers as doubles, and money must stay exact.
SELECT seq, occurred_at, action, transaction_id, balance_before, balance_after,
       balance_after - balance_before AS change, actor_type, actor_id
  FROM (
        SELECT e.seq, e.occurred_at, e.action, e.resource_id AS transaction_id, e.actor_type, e.actor_id,
               CAST(NULLIF(regexp_extract(e.payload_before, a.balance, 1), '') AS DECIMAL(19, 4)) AS balance_before,
               CAST(NULLIF(regexp_extract(e.payload_after, a.balance, 1), '') AS DECIMAL(19, 4)) AS balance_after
          FROM ledgerline_audit.audit_events e
         CROSS JOIN (SELECT concat('"', ?, '":\s*(-?[0-9]+(?:\.[0-9]+)?)') AS balance) a
         WHERE e.dt BETWEEN ? AND ?
           AND e.category = 'financial'
       ) m
 WHERE balance_after IS NOT NULL
 ORDER BY seq
