-- The shared callback list (PRODUCT C1/C2): one open entry per customer number, the same
-- for every operator. Missed calls and callback requests from a number already on the
-- list update its entry; an entry leaves the list only after a successful callback.

-- While `claimed_by` is set and `claim_expires_at` is in the future an operator is calling
-- the number and the entry is hidden from everyone else; after a failed attempt it stays
-- hidden until `hidden_until`. Claims are one conditional UPDATE.
CREATE TABLE callback_entries (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number           TEXT    NOT NULL,
    -- open → done (after a successful callback; never deleted).
    state            TEXT    NOT NULL,
    queue            TEXT,
    -- Of the newest note: ivr, missed or operator.
    source           TEXT    NOT NULL,
    call_id          TEXT,
    call_count       BIGINT  NOT NULL,
    first_at         BIGINT  NOT NULL,
    last_at          BIGINT  NOT NULL,
    -- The earliest time promised to the caller, if any.
    promised_at      BIGINT,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    last_outcome     TEXT,
    claimed_by       TEXT,
    claimed_at       BIGINT,
    claim_expires_at BIGINT,
    -- The attempt (callback_attempts.id) of the current claim.
    claim_attempt_id BIGINT,
    hidden_until     BIGINT,
    done_at          BIGINT
);
-- One open entry per number: concurrent notes for a new number upsert into one row.
CREATE UNIQUE INDEX callback_entries_one_open ON callback_entries (number)
    WHERE state <> 'done';
CREATE INDEX callback_entries_number ON callback_entries (number, id);

-- Every callback attempt: started by a claim, ended by its outcome. An attempt whose claim
-- lapsed and was taken over by another operator is ended with no outcome.
CREATE TABLE callback_attempts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entry_id    BIGINT  NOT NULL REFERENCES callback_entries (id),
    operator    TEXT    NOT NULL,
    outcome     TEXT,
    note        TEXT,
    started_at  BIGINT  NOT NULL,
    ended_at    BIGINT
);
CREATE INDEX callback_attempts_entry ON callback_attempts (entry_id, id);
