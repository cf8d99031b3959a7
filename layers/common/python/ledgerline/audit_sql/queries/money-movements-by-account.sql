-- Money movements on one ledger account: every entry posted to it, with its amount and the balance after, in the trail's order.
-- param account_id (uuid): the ledger account (a wallet's id)
-- param from (date): first day, UTC (YYYY-MM-DD)
-- param to (date): last day, UTC, inclusive
-- An entry is read from the payload's text with regular expressions, not with JSON
-- functions: DuckDB reads JSON numbers as doubles, and money must stay exact. Entries are
-- flat objects with an entry_type; a posting's audit row carries them in its payload_after.
SELECT seq, occurred_at, action, resource_type, resource_id,
       regexp_extract(entry_text, '"entry_type":\s*"([a-z_]+)"', 1) AS entry_type,
       regexp_extract(entry_text, '"currency":\s*"([A-Z]{3})"', 1) AS currency,
       CAST(regexp_extract(entry_text, '"amount":\s*(-?[0-9]+(?:\.[0-9]+)?)', 1) AS DECIMAL(19, 4)) AS amount,
       CAST(NULLIF(regexp_extract(entry_text, '"balance_after":\s*(-?[0-9]+(?:\.[0-9]+)?)', 1), '') AS DECIMAL(19, 4))
         AS balance_after,
       actor_type, actor_id
  FROM ledgerline_audit.audit_events e
 CROSS JOIN (SELECT concat('\{[^{}]*"account_id":\s*"', ?, '"[^{}]*\}') AS entry_pattern) p
 CROSS JOIN UNNEST(regexp_extract_all(e.payload_after, p.entry_pattern)) AS t (entry_text)
 WHERE e.dt BETWEEN ? AND ?
   AND e.category = 'financial'
   AND strpos(entry_text, '"entry_type"') > 0
 ORDER BY seq, amount
