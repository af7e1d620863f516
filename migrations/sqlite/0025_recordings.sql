-- Call recordings (PRODUCT S2): one row per WAV file the daemon writes under the state
-- directory, the marks in it (who answered, hold, transfer), and who started, stopped,
-- played, downloaded or purged which recording when.
CREATE TABLE recordings (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id       TEXT    NOT NULL,
    caller        TEXT    NOT NULL,
    operator      TEXT,
    queue         TEXT,
    path          TEXT    NOT NULL,
    layout        TEXT    NOT NULL,
    started_by    TEXT,
    started_at_ms BIGINT  NOT NULL,
    ended_at_ms   BIGINT,
    duration_ms   BIGINT,
    bytes         BIGINT,
    status        TEXT    NOT NULL,
    purged_at_ms  BIGINT
);
CREATE INDEX recordings_started ON recordings (started_at_ms);
CREATE INDEX recordings_call ON recordings (call_id);
CREATE TABLE recording_marks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    recording_id BIGINT  NOT NULL REFERENCES recordings (id),
    offset_ms    BIGINT  NOT NULL,
    label        TEXT    NOT NULL
);
CREATE INDEX recording_marks_recording ON recording_marks (recording_id);
CREATE TABLE recording_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms        BIGINT  NOT NULL,
    user_name    TEXT,
    recording_id BIGINT  NOT NULL,
    call_id      TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    detail       TEXT
);
CREATE INDEX recording_log_at ON recording_log (at_ms);
