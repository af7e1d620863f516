-- The digest algorithm each operator's phone is challenged with (one challenge per
-- account: some phones fail when offered one they can't answer). MD5 works everywhere.
ALTER TABLE operators ADD COLUMN sip_digest TEXT NOT NULL DEFAULT 'MD5';
