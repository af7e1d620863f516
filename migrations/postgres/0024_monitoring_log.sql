-- Every use of listen, whisper, barge and take-over (PRODUCT S1): who, which call, what and
-- when. Kept with the call records; supervisors read it on the board.
CREATE TABLE monitoring_log (
    id BIGSERIAL PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    supervisor TEXT NOT NULL,
    call_id TEXT NOT NULL,
    caller TEXT NOT NULL,
    operator TEXT NOT NULL,
    queue TEXT,
    action TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX monitoring_log_at ON monitoring_log (at_ms);
