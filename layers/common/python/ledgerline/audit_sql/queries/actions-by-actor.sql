-- Every action one actor took in a range of days, in the trail's order.
-- param actor_id (uuid): the actor (a user's, admin's or merchant's id)
-- param from (date): first day, UTC (YYYY-MM-DD)
-- param to (date): last day, UTC, inclusive
SELECT seq, occurred_at, action, resource_type, resource_id, actor_ip,
       json_extract_scalar(metadata, '$.request_id') AS request_id
  FROM ledgerline_audit.audit_events
 WHERE actor_id = ?
   AND dt BETWEEN ? AND ?
 ORDER BY seq
