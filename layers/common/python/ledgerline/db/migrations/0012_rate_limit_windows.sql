-- Rate-limit windows start at a subject's first request, not at the clock's minute (issue 13).
--
-- A window aligned to the epoch minute let six logins in a row straddle a minute's end
-- and all pass; and the counting upsert was written twice (auth_admit and
-- ledgerline.auth.ratelimits). A bucket now stores when its window ends (resets_at): the
-- first request of a window sets it to now() + the limit's period, and every request
-- until then counts against it. One function counts (routines/rate_limit_hit.sql), for
-- both callers. Buckets are counters in an UNLOGGED table: emptying them here only
-- forgives the current windows.
TRUNCATE rate_limit_buckets;
ALTER TABLE rate_limit_buckets RENAME COLUMN window_start TO resets_at;
