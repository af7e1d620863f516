-- Web chat (seeds 002/004, PRODUCT H1–H5): visitors from the sites' widgets, chats offered
-- to one operator at a time, the conversation as numbered events, and what operators add
-- around it (participants, invitations, canned messages, tags, notes, files, page views).
-- Flags are 0/1 and times unix milliseconds, as everywhere.

-- Offering a chat locks the operator's row (`chat_lock = chat_lock + 1`) before it counts
-- the operator's load, so two nodes can't both give the last free place.
ALTER TABLE operators ADD COLUMN chat_lock BIGINT NOT NULL DEFAULT 0;

-- One row per (site, visitor key); the key lives in the widget's localStorage. A
-- `verified_*` flag says the site signed the value (HMAC): operators can't edit it.
CREATE TABLE chat_visitors (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    site                 TEXT    NOT NULL,
    visitor_key          TEXT    NOT NULL,
    name                 TEXT,
    email                TEXT,
    phone                TEXT,
    customer_id          TEXT,
    verified_name        BIGINT  NOT NULL DEFAULT 0,
    verified_email       BIGINT  NOT NULL DEFAULT 0,
    verified_customer_id BIGINT  NOT NULL DEFAULT 0,
    created_at           BIGINT  NOT NULL,
    last_seen_at         BIGINT  NOT NULL,
    UNIQUE (site, visitor_key)
);

-- waiting → offered (to `offered_to` until `offer_expires_at`) → active → ended. A chat
-- transferred to a named operator waits for `for_operator` only. `last_seq` is the newest
-- event's sequence number; taking the next one locks the row.
CREATE TABLE chats (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    site             TEXT    NOT NULL,
    visitor_id       BIGINT  NOT NULL REFERENCES chat_visitors (id),
    queue            TEXT    NOT NULL,
    topic            TEXT    NOT NULL DEFAULT '',
    page_url         TEXT    NOT NULL DEFAULT '',
    browser          TEXT    NOT NULL DEFAULT '',
    os               TEXT    NOT NULL DEFAULT '',
    user_agent       TEXT    NOT NULL DEFAULT '',
    -- SHA-256 (hex) of the visitor's token; the token itself is never stored.
    token_hash       TEXT    NOT NULL UNIQUE,
    state            TEXT    NOT NULL,
    for_operator     TEXT,
    offered_to       TEXT,
    offered_at       BIGINT,
    offer_expires_at BIGINT,
    created_at       BIGINT  NOT NULL,
    accepted_at      BIGINT,
    ended_at         BIGINT,
    ended_by         TEXT,
    last_seq         BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX chats_state_queue ON chats (state, queue, created_at);
CREATE INDEX chats_offered_to ON chats (offered_to) WHERE state = 'offered';
CREATE INDEX chats_visitor ON chats (visitor_id, created_at);

-- Operators who rejected a chat or let its offer expire (or transferred it away): it is
-- never offered to them again.
CREATE TABLE chat_declines (
    chat_id     BIGINT  NOT NULL REFERENCES chats (id),
    operator    TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (chat_id, operator)
);

-- Operators in a chat. A row counts towards the operator's load until they leave or wrap
-- up; the wrap-up category and note are kept here.
CREATE TABLE chat_participants (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id          BIGINT  NOT NULL REFERENCES chats (id),
    user_id          BIGINT  NOT NULL REFERENCES users (id),
    operator         TEXT    NOT NULL,
    joined_at        BIGINT  NOT NULL,
    left_at          BIGINT,
    wrapped_up_at    BIGINT,
    wrap_up_category TEXT,
    wrap_up_note     TEXT
);
-- A user is in a chat at most once at a time.
CREATE UNIQUE INDEX chat_participants_open ON chat_participants (chat_id, user_id)
    WHERE left_at IS NULL AND wrapped_up_at IS NULL;
CREATE INDEX chat_participants_load ON chat_participants (operator)
    WHERE left_at IS NULL AND wrapped_up_at IS NULL;
CREATE INDEX chat_participants_user ON chat_participants (user_id, chat_id);

-- Everything the conversation shows, numbered per chat when stored. A resend carries the
-- same client id and is not stored twice. Private events are for operators only.
CREATE TABLE chat_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id        BIGINT  NOT NULL REFERENCES chats (id),
    seq            BIGINT  NOT NULL,
    kind           TEXT    NOT NULL,
    sender         TEXT    NOT NULL,
    sender_user_id BIGINT,
    sender_name    TEXT    NOT NULL DEFAULT '',
    private        BIGINT  NOT NULL DEFAULT 0,
    body           TEXT    NOT NULL DEFAULT '',
    data           TEXT    NOT NULL DEFAULT '{}',
    client_id      TEXT,
    created_at     BIGINT  NOT NULL,
    UNIQUE (chat_id, seq),
    UNIQUE (chat_id, client_id)
);
-- Each daemon asks every second which chats got events lately (other nodes' too).
CREATE INDEX chat_events_created ON chat_events (created_at);

-- Invitations of another operator (named, or anyone from a queue): one pending per chat.
CREATE TABLE chat_invites (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id       BIGINT  NOT NULL REFERENCES chats (id),
    from_user_id  BIGINT  NOT NULL REFERENCES users (id),
    to_operator   TEXT,
    to_queue      TEXT,
    state         TEXT    NOT NULL,
    answered_by   TEXT,
    created_at    BIGINT  NOT NULL,
    answered_at   BIGINT
);
CREATE UNIQUE INDEX chat_invites_one_pending ON chat_invites (chat_id) WHERE state = 'pending';
CREATE INDEX chat_invites_pending ON chat_invites (state, to_operator, to_queue);

-- Operators of a queue who said no to a queue invitation; it stays open for the others.
CREATE TABLE chat_invite_declines (
    invite_id   BIGINT  NOT NULL REFERENCES chat_invites (id),
    operator    TEXT    NOT NULL,
    PRIMARY KEY (invite_id, operator)
);

-- Canned messages set by supervisors (queue NULL: every queue), and each user's stars.
CREATE TABLE chat_canned (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    queue       TEXT,
    title       TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    created_by  BIGINT  REFERENCES users (id)
);
CREATE INDEX chat_canned_queue ON chat_canned (queue);

CREATE TABLE chat_canned_favourites (
    user_id     BIGINT  NOT NULL REFERENCES users (id),
    canned_id   BIGINT  NOT NULL REFERENCES chat_canned (id),
    PRIMARY KEY (user_id, canned_id)
);
CREATE INDEX chat_canned_favourites_canned ON chat_canned_favourites (canned_id);

CREATE TABLE chat_tags (
    chat_id     BIGINT  NOT NULL REFERENCES chats (id),
    tag         TEXT    NOT NULL,
    PRIMARY KEY (chat_id, tag)
);
CREATE INDEX chat_tags_tag ON chat_tags (tag, chat_id);

-- Operators' notes on a chat (shown again in the visitor's later chats); a transfer's note
-- is one with `transfer` = 1.
CREATE TABLE chat_notes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id     BIGINT  NOT NULL REFERENCES chats (id),
    visitor_id  BIGINT  NOT NULL REFERENCES chat_visitors (id),
    user_id     BIGINT  REFERENCES users (id),
    body        TEXT    NOT NULL,
    transfer    BIGINT  NOT NULL DEFAULT 0,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX chat_notes_chat ON chat_notes (chat_id, id);
CREATE INDEX chat_notes_visitor ON chat_notes (visitor_id, id);

CREATE TABLE chat_page_views (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    visitor_id  BIGINT  NOT NULL REFERENCES chat_visitors (id),
    chat_id     BIGINT  REFERENCES chats (id),
    url         TEXT    NOT NULL,
    title       TEXT    NOT NULL DEFAULT '',
    created_at  BIGINT  NOT NULL
);
CREATE INDEX chat_page_views_visitor ON chat_page_views (visitor_id, created_at);

-- Uploaded files. The id is 128 random bits in hex and names the file on disk. A file is
-- uploaded first and then sent with an event (`event_seq`), whose privacy it takes.
CREATE TABLE chat_files (
    id             TEXT    PRIMARY KEY,
    chat_id        BIGINT  NOT NULL REFERENCES chats (id),
    name           TEXT    NOT NULL,
    content_type   TEXT    NOT NULL,
    size           BIGINT  NOT NULL,
    private        BIGINT  NOT NULL DEFAULT 0,
    sender         TEXT    NOT NULL,
    sender_user_id BIGINT,
    sender_name    TEXT    NOT NULL DEFAULT '',
    event_seq      BIGINT,
    created_at     BIGINT  NOT NULL
);
CREATE INDEX chat_files_chat ON chat_files (chat_id, created_at);
