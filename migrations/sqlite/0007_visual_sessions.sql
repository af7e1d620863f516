-- Visual sessions (seed 000): an operator invites a customer by SMS or e-mail to a page
-- that shares the customer's camera; each session costs its license 1 credit.

-- Licenses and their credit balance. The CHECK is a second guard: charges are one
-- conditional UPDATE (credits > 0), so the balance never goes below zero.
CREATE TABLE licenses (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    credits     BIGINT  NOT NULL DEFAULT 0 CHECK (credits >= 0),
    created_at  BIGINT  NOT NULL
);

-- Which web users may charge which license (the operator's drop-down).
CREATE TABLE license_users (
    user_id     BIGINT  NOT NULL REFERENCES users (id),
    license_id  BIGINT  NOT NULL REFERENCES licenses (id),
    PRIMARY KEY (user_id, license_id)
);
CREATE INDEX license_users_license ON license_users (license_id);

-- A session from the invitation to its end: invited → joined → ended.
CREATE TABLE visual_sessions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    operator_user_id BIGINT  NOT NULL REFERENCES users (id),
    license_id       BIGINT  NOT NULL REFERENCES licenses (id),
    case_number      TEXT    NOT NULL,
    channel          TEXT    NOT NULL,
    phone            TEXT,
    email            TEXT,
    -- SHA-256 (hex) of the link's token; the token itself is never stored.
    token_hash       TEXT    NOT NULL UNIQUE,
    state            TEXT    NOT NULL,
    end_reason       TEXT,
    created_at       BIGINT  NOT NULL,
    joined_at        BIGINT,
    ended_at         BIGINT,
    -- The operator's last sign of life; an hour later the session ends by itself.
    last_activity_at BIGINT  NOT NULL,
    -- The sequence number of the newest chat message.
    last_seq         BIGINT  NOT NULL DEFAULT 0
);
-- One session per operator that has not ended: concurrent creations can't both win.
CREATE UNIQUE INDEX visual_sessions_one_open ON visual_sessions (operator_user_id)
    WHERE state <> 'ended';
CREATE INDEX visual_sessions_operator ON visual_sessions (operator_user_id, created_at);
CREATE INDEX visual_sessions_phone ON visual_sessions (phone, created_at);
-- The expiry sweep looks only at open sessions.
CREATE INDEX visual_sessions_open_activity ON visual_sessions (last_activity_at)
    WHERE state <> 'ended';

-- Every change of a balance: top-ups (amount > 0) and session charges (amount -1).
CREATE TABLE license_entries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    license_id    BIGINT  NOT NULL REFERENCES licenses (id),
    kind          TEXT    NOT NULL,
    amount        BIGINT  NOT NULL,
    balance_after BIGINT  NOT NULL,
    user_id       BIGINT  REFERENCES users (id),
    session_id    BIGINT  REFERENCES visual_sessions (id),
    created_at    BIGINT  NOT NULL
);
CREATE INDEX license_entries_license ON license_entries (license_id, id);

-- Chat in a session. `seq` counts per session and is assigned when the message is
-- stored; a resent message carries the same client id and is not stored twice.
CREATE TABLE visual_messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  BIGINT  NOT NULL REFERENCES visual_sessions (id),
    seq         BIGINT  NOT NULL,
    sender      TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    client_id   TEXT,
    created_at  BIGINT  NOT NULL,
    UNIQUE (session_id, seq),
    UNIQUE (session_id, client_id)
);

-- Photos from the customer and the operator's snapshots. The id is 128 random bits in
-- hex and names the file on disk, so a URL to one can't be guessed.
CREATE TABLE visual_files (
    id            TEXT    PRIMARY KEY,
    session_id    BIGINT  NOT NULL REFERENCES visual_sessions (id),
    kind          TEXT    NOT NULL,
    content_type  TEXT    NOT NULL,
    size          BIGINT  NOT NULL,
    created_at    BIGINT  NOT NULL
);
CREATE INDEX visual_files_session ON visual_files (session_id, created_at);
