-- Sessions and rate limits, second pass (issue 18, part B).
--
-- Rate limits: a window that starts at a subject's first request still let a burst
-- straddling its end pass twice the limit (the last hits of one window, the first of the
-- next). rate_limit_hit now weighs the previous window's hits by how much of it still
-- overlaps the last `period` seconds (a sliding-window counter), so a bucket remembers
-- the window before the current one (previous_hits). hits counts admitted requests only;
-- refused counts the refusals since the last admitted one (the first of a run is
-- audited). Buckets are counters in an UNLOGGED table: the existing rows stay, and an
-- old row's hits (which counted refusals too) only makes its next window stricter.
ALTER TABLE rate_limit_buckets
  ADD COLUMN previous_hits integer NOT NULL DEFAULT 0,
  ADD COLUMN refused integer NOT NULL DEFAULT 0;

-- Refresh grace: a client that retries a refresh (a lost response, two tabs) gets the
-- same new pair again instead of being refused. Tokens are stored as digests only, so the
-- successor of a refresh token is derived, not stored: HMAC-SHA256 under this per-session
-- key of the token presented (ledgerline.auth.sessions.refresh). The key is made at the
-- session's first rotation; knowing it without a token (which only its client holds)
-- derives nothing.
ALTER TABLE sessions ADD COLUMN rotation_key bytea CHECK (octet_length(rotation_key) = 32);
