-- Automatic callbacks (PRODUCT C3): the scheduler counts its own attempts per entry and
-- waits the queue's retry delay between them; after the queue's maximum the entry stays
-- on the list for the operators, marked.
ALTER TABLE callback_entries ADD COLUMN auto_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE callback_entries ADD COLUMN next_auto_at BIGINT;
CREATE INDEX callback_entries_auto ON callback_entries (state, queue, next_auto_at);
