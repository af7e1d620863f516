-- The state each operator chose (online, away, pause, offline), so a restarted daemon puts
-- them back where they were instead of logging everyone off (Asterisk's persistentmembers).
ALTER TABLE operators ADD COLUMN chosen_state TEXT NOT NULL DEFAULT 'offline';
