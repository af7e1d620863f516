-- Variables and tags a flow set on the call (`set` steps), as a JSON object.
ALTER TABLE calls ADD COLUMN variables TEXT NOT NULL DEFAULT '{}';

-- Callback requests left in the IVR (a `callback` step, or the offer while waiting).
-- The callbacks issue turns these into the shared missed-calls list.
CREATE TABLE callback_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    number       TEXT    NOT NULL,
    queue        TEXT,
    promise      TEXT,
    source       TEXT    NOT NULL,
    call_id      TEXT,
    requested_at BIGINT  NOT NULL
);
CREATE INDEX callback_requests_number ON callback_requests (number);
