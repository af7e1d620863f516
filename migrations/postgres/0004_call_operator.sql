-- The operator who took the call (the bridged second leg), if anyone did.
ALTER TABLE calls ADD COLUMN operator TEXT;
