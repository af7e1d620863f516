-- People who log in to the web console. Passwords are argon2id PHC strings; SIP secrets
-- stay with the operators table (digest needs HA1, never argon2). A user who takes calls
-- and chats names the operator account they work as.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL DEFAULT '',
    role          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    operator      TEXT,
    failed_logins BIGINT  NOT NULL DEFAULT 0,
    locked_until  BIGINT,
    created_at    BIGINT  NOT NULL
);

-- Logged-in browsers: the cookie holds a random token; only its SHA-256 is kept.
CREATE TABLE web_sessions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash  TEXT    NOT NULL UNIQUE,
    user_id     BIGINT  NOT NULL REFERENCES users (id),
    csrf_token  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);
