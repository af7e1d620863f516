-- One call detail record per inbound call leg.
-- Timestamps are unix milliseconds (portable through sqlx Any).
CREATE TABLE calls (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id      TEXT    NOT NULL,
    caller       TEXT    NOT NULL,
    called       TEXT    NOT NULL,
    started_at   BIGINT  NOT NULL,
    answered_at  BIGINT,
    ended_at     BIGINT,
    end_reason   TEXT,
    digits       TEXT    NOT NULL DEFAULT '',
    flow         TEXT,
    flow_version TEXT,
    path         TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX calls_started_at ON calls (started_at);
CREATE INDEX calls_call_id ON calls (call_id);
