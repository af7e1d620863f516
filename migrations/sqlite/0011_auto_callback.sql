-- Automatic callbacks (PRODUCT C3): the scheduler counts its own attempts per entry and
-- waits the queue's retry delay between them; after the queue's maximum the entry stays
-- on the list for the operators, marked.
ALTER TABLE callback_entries ADD COLUMN auto_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE callback_entries ADD COLUMN next_auto_at BIGINT;
-- The widget and the scheduler read open entries in promise order: with 100,000 entries a
-- sort per read would cost tens of milliseconds.
CREATE INDEX callback_entries_due ON callback_entries (COALESCE(promised_at, first_at), id)
    WHERE state = 'open';
CREATE INDEX callback_entries_queue_due
    ON callback_entries (queue, COALESCE(promised_at, first_at), id) WHERE state = 'open';
