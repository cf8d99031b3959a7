-- What administrators did, and every administration or configuration change, in a range of days.
-- param from (date): first day, UTC (YYYY-MM-DD)
-- param to (date): last day, UTC, inclusive
SELECT seq, occurred_at, actor_id, actor_type, action, resource_type, resource_id, actor_ip
  FROM ledgerline_audit.audit_events
 WHERE (actor_type = 'admin' OR category = 'admin')
   AND dt BETWEEN ? AND ?
 ORDER BY seq
