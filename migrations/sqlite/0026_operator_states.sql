-- The operators' state history (PRODUCT S3): a row whenever an operator's status changes,
-- saying that from at_ms on they were in state (online, busy, wrap_up, away, pause,
-- offline) until their next row. The reports sum each operator's time per state from it.
CREATE TABLE operator_states (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    operator TEXT    NOT NULL,
    state    TEXT    NOT NULL,
    at_ms    BIGINT  NOT NULL
);
CREATE INDEX operator_states_operator_at ON operator_states (operator, at_ms);
CREATE INDEX operator_states_at ON operator_states (at_ms);
