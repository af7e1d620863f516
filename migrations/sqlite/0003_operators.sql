-- Operators and their SIP accounts. The SIP secret is kept only as digest HA1 values
-- (H(user:realm:password) per algorithm): digest auth needs them, and they are useless
-- for any other realm. Web passwords (argon2) live apart, with the web users.
CREATE TABLE operators (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL DEFAULT '',
    sip_user      TEXT    NOT NULL UNIQUE,
    realm         TEXT    NOT NULL,
    ha1_md5       TEXT    NOT NULL,
    ha1_sha256    TEXT    NOT NULL,
    chat_capacity INTEGER NOT NULL DEFAULT 3,
    created_at    BIGINT  NOT NULL
);

-- Calls nobody answered: abandoned in a queue, or outside hours when the flow says so.
-- Anonymous callers are counted (number 'anonymous') but can't be called back.
CREATE TABLE missed_calls (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    number     TEXT    NOT NULL,
    call_id    TEXT    NOT NULL,
    queue      TEXT,
    reason     TEXT    NOT NULL,
    waited_ms  BIGINT  NOT NULL DEFAULT 0,
    path       TEXT    NOT NULL DEFAULT '',
    missed_at  BIGINT  NOT NULL
);
CREATE INDEX missed_calls_number ON missed_calls (number);
