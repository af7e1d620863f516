-- Outgoing notifications (invites by SMS or e-mail). A message is stored here before
-- anything is sent; a notifier claims it (status 'sending', a claim token and the time the
-- claim expires, so a node that dies mid-send doesn't strand it), sends it and records the
-- outcome. Status: queued, sending, sent, failed (gave up; last_error says why), outbox
-- (kept, not sent: the offline `outbox` mode). Times are unix milliseconds.
CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel         TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    subject         TEXT    NOT NULL DEFAULT '',
    body            TEXT    NOT NULL,
    related         TEXT    NOT NULL DEFAULT '',
    status          TEXT    NOT NULL DEFAULT 'queued',
    attempts        BIGINT  NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    next_attempt_at BIGINT  NOT NULL,
    claim           TEXT,
    claim_until     BIGINT,
    sent_at         BIGINT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_related ON outbox (related);
