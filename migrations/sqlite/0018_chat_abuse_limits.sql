-- Web chat abuse limits (issue 15).
--
-- `visitor_seen_at`: the last time a node saw the visitor's socket open (each node
-- refreshes its connected chats every few seconds). A waiting or offered chat whose
-- visitor has been gone longer than `chat.abandon_waiting_after_secs` ends by itself, so
-- a flood of started chats leaves nothing in the queue. NULL: never connected (the chat's
-- `created_at` counts instead).
ALTER TABLE chats ADD COLUMN visitor_seen_at BIGINT;

-- Transcript e-mails queued for the chat. The visitor's request is one conditional
-- `UPDATE … WHERE transcripts_sent < limit`, so parallel requests can't pass the limit.
ALTER TABLE chats ADD COLUMN transcripts_sent BIGINT NOT NULL DEFAULT 0;
UPDATE chats SET transcripts_sent = (
    SELECT COUNT(*) FROM outbox WHERE outbox.related = 'chat:' || chats.id
) WHERE EXISTS (SELECT 1 FROM outbox WHERE outbox.related = 'chat:' || chats.id);

-- Uploaded files never sent in a message are removed after a while: found by this.
CREATE INDEX chat_files_unsent ON chat_files (created_at) WHERE event_seq IS NULL;
