-- A number the dial plan refuses (taken from caller ID: premium rate, abroad) stays on
-- the callback list for the operators to see, with the reason, and is never dialled
-- automatically (PRODUCT T5).
ALTER TABLE callback_entries ADD COLUMN undialable TEXT;
