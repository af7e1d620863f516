-- The operator's tags for a call (the call panel, during or after the call), beside the
-- wrap-up category and note: comma-separated, as typed.
ALTER TABLE calls ADD COLUMN wrapup_tags TEXT;
