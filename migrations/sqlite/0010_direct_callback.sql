-- Direct callback (PRODUCT C5/C6): an operator with an own number (a DID routed to the
-- hotline) presents it when calling a customer; the customer calling that number back
-- while the link is in force goes straight to that operator. Admins set it per operator.

-- One row per operator with an own number; no row: direct callback off (the default).
-- `mode`: 1 the next call only, within `minutes`; 2 any call within `hours`; 3 until the
-- end of the next working day of `calendar`; 4 for `days` (counted on `calendar`'s clock).
-- All three lengths are kept so switching modes back and forth loses nothing.
CREATE TABLE operator_direct (
    operator    TEXT    NOT NULL PRIMARY KEY,
    -- Canonical form (+36…); an own number belongs to one operator.
    own_number  TEXT    NOT NULL UNIQUE,
    mode        BIGINT  NOT NULL,
    minutes     BIGINT  NOT NULL,
    hours       BIGINT  NOT NULL,
    days        BIGINT  NOT NULL,
    calendar    TEXT,
    updated_at  BIGINT  NOT NULL
);

-- The link customer → operator made by the operator's newest call to the customer. One per
-- customer: a newer call by any operator with an own number replaces it. In force while
-- `expires_at` is in the future and, for mode 1, `used` is 0 (the call that uses it sets 1
-- in one conditional UPDATE, so two calls at once can't both use it).
CREATE TABLE direct_bindings (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    customer     TEXT    NOT NULL UNIQUE,
    operator     TEXT    NOT NULL,
    own_number   TEXT    NOT NULL,
    mode         BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    used         BIGINT  NOT NULL DEFAULT 0,
    last_used_at BIGINT
);
CREATE INDEX direct_bindings_operator ON direct_bindings (operator);

-- A missed direct call is marked for the operator it was meant for (the widget shows it).
ALTER TABLE callback_entries ADD COLUMN for_operator TEXT;
