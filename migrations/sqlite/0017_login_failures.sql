-- Failed logins counted per (account name, client address) and per account name
-- (address '*'), in windows that start at the first attempt. An attempt is counted
-- before its password is checked, so parallel guesses can't pass the lockout. Names
-- that don't exist are counted too: the answers must not tell which accounts exist.
-- (users.failed_logins and users.locked_until are no longer used.)
CREATE TABLE login_failures (
    name         TEXT   NOT NULL,
    address      TEXT   NOT NULL,
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    PRIMARY KEY (name, address)
);
CREATE INDEX login_failures_window ON login_failures (window_start);

-- Expired sessions are purged.
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
