-- Every change to one resource, with its payloads before and after, in the trail's order.
-- param resource_type (text): what it is: user, account, transaction, payment, withdrawal, ...
-- param resource_id (text): its id
SELECT seq, occurred_at, action, actor_type, actor_id, payload_before, payload_after
  FROM ledgerline_audit.audit_events
 WHERE resource_type = ?
   AND resource_id = ?
 ORDER BY seq
