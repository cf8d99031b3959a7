-- Failed logins (wrong password, unknown or suspended account, wrong second factor) by source IP, most first.
-- param from (date): first day, UTC (YYYY-MM-DD)
-- param to (date): last day, UTC, inclusive
SELECT actor_ip,
       count(*) AS failures,
       count(DISTINCT resource_id) AS accounts,
       min(occurred_at) AS first_seen,
       max(occurred_at) AS last_seen
  FROM ledgerline_audit.audit_events
 WHERE action IN ('auth.login_failed', 'auth.otp_failed')
   AND dt BETWEEN ? AND ?
 GROUP BY actor_ip
 ORDER BY failures DESC, actor_ip
