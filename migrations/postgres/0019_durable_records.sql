-- Call records that survive a database outage and a crash (issue 15). Every write names
-- its record by a key of its own (unique per call), so one replayed from the journal
-- after an unknown outcome lands once; `node` tells a restarted daemon which unfinished
-- records are its own calls (killed with it) and which belong to other nodes.
ALTER TABLE calls ADD COLUMN record_key TEXT;
ALTER TABLE calls ADD COLUMN node TEXT;
CREATE UNIQUE INDEX calls_record_key ON calls (record_key);
CREATE INDEX calls_open ON calls (node) WHERE ended_at IS NULL;
-- Sent messages are purged after notify.retention_days.
CREATE INDEX outbox_status_updated ON outbox (status, updated_at);
