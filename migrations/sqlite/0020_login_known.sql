-- Addresses an account logged in from recently: the account-wide lockout (many
-- addresses' failures together) does not apply there, so strangers' guesses from
-- elsewhere can't lock the owner out of the places they work from.
CREATE TABLE login_known (
    name       TEXT   NOT NULL,
    address    TEXT   NOT NULL,
    last_login BIGINT NOT NULL,
    PRIMARY KEY (name, address)
);
CREATE INDEX login_known_last ON login_known (last_login);
