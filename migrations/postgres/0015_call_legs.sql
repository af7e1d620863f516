-- What happened after the IVR, for reporting (PRODUCT T6, S3): the queue the caller
-- waited in and for how long, the time on hold, the wrap-up the operator gave, and the
-- recording (issue 12). Every operator (or outside number) the call was offered to is a
-- leg: its ring time, whether it was answered, talk and hold time, and where that
-- operator transferred the caller.
ALTER TABLE calls ADD COLUMN queue TEXT;
ALTER TABLE calls ADD COLUMN wait_ms BIGINT;
ALTER TABLE calls ADD COLUMN hold_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN wrapup_category TEXT;
ALTER TABLE calls ADD COLUMN wrapup_note TEXT;
ALTER TABLE calls ADD COLUMN recording TEXT;
CREATE TABLE call_legs (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call           BIGINT  NOT NULL REFERENCES calls (id),
    seq            INTEGER NOT NULL,
    operator       TEXT,
    number         TEXT,
    rang_at        BIGINT  NOT NULL,
    answered_at    BIGINT,
    ended_at       BIGINT  NOT NULL,
    outcome        TEXT    NOT NULL,
    hold_ms        BIGINT  NOT NULL DEFAULT 0,
    transferred_to TEXT
);
CREATE INDEX call_legs_call ON call_legs (call);
CREATE INDEX call_legs_operator ON call_legs (operator, rang_at);
