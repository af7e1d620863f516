-- A visual session invited from the call panel belongs to that call (PRODUCT V4): the
-- call's SIP Call-ID, so the call's record and the session find each other.
ALTER TABLE visual_sessions ADD COLUMN call_id TEXT;
CREATE INDEX visual_sessions_call ON visual_sessions (call_id);
