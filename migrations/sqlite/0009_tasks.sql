-- The tasks widget (PRODUCT C4): operators' own to-dos, mostly callbacks, added to a failed
-- or answered call or freely. A task has a title, an optional customer number, a due time,
-- a note, parameters and an assignee (an operator, a queue, or nobody).

-- Calling a task's customer claims it like a callback-list entry: while `claimed_by` is
-- set and `claim_expires_at` is in the future an operator is calling the customer and
-- nobody else may. Claims are one conditional UPDATE and lapse by themselves.
CREATE TABLE tasks (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    title             TEXT    NOT NULL,
    -- Digits with an optional leading +; NULL for a task that needs no call.
    number            TEXT,
    note              TEXT,
    due_at            BIGINT  NOT NULL,
    -- 'operator' or 'queue' with the name in `assignee`; both NULL: anyone may take it.
    assignee_kind     TEXT,
    assignee          TEXT,
    -- open → done (never deleted).
    state             TEXT    NOT NULL,
    -- The call it was made from, and the callback-list entry it works off, if any.
    call_id           TEXT,
    callback_entry_id BIGINT  REFERENCES callback_entries (id),
    created_by        TEXT    NOT NULL,
    created_at        BIGINT  NOT NULL,
    claimed_by        TEXT,
    claimed_at        BIGINT,
    -- The claimer's newest claim (a claim renewed to call again); guards double clicks.
    last_claimed_at   BIGINT,
    claim_expires_at  BIGINT,
    done_by           TEXT,
    done_at           BIGINT
);
CREATE INDEX tasks_open_due ON tasks (state, due_at, id);

-- Parameters in the order the operator gave them.
CREATE TABLE task_params (
    task_id  BIGINT  NOT NULL REFERENCES tasks (id),
    position BIGINT  NOT NULL,
    name     TEXT    NOT NULL,
    value    TEXT    NOT NULL,
    PRIMARY KEY (task_id, position)
);

-- A task's past: created, rescheduled, claimed, released (a call that could not start),
-- completed. `due_at` is the due time set by created/rescheduled.
CREATE TABLE task_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id  BIGINT  NOT NULL REFERENCES tasks (id),
    kind     TEXT    NOT NULL,
    operator TEXT    NOT NULL,
    at       BIGINT  NOT NULL,
    due_at   BIGINT,
    note     TEXT
);
CREATE INDEX task_events_task ON task_events (task_id, id);
