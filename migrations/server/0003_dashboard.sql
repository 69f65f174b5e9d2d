-- The web dashboard: users and roles, sessions, prepaid top-ups, and the outbox of deliveries to
-- the city platform. Never edit once landed.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    -- argon2id PHC string; the password itself is never stored.
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'finance', 'community')),
    -- The town a community worker serves (NULL for the other roles).
    town          TEXT REFERENCES towns (code),
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  TEXT,
    created_at    TEXT NOT NULL,
    CHECK ((role = 'community') = (town IS NOT NULL))
);

-- The canteens an operator runs.
CREATE TABLE user_canteens (
    user_id    INTEGER NOT NULL REFERENCES users (id),
    canteen_id INTEGER NOT NULL REFERENCES canteens (id),
    PRIMARY KEY (user_id, canteen_id)
) WITHOUT ROWID;

CREATE TABLE sessions (
    -- sha256 (hex) of the random cookie value, which is never stored.
    id_hash    TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    csrf       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions (user_id);

-- Prepaid top-ups: the ledger behind residents.prepaid_balance changes made at the desk.
CREATE TABLE topups (
    id            INTEGER PRIMARY KEY,
    resident_id   INTEGER NOT NULL REFERENCES residents (id),
    amount        INTEGER NOT NULL CHECK (amount > 0),
    balance_after INTEGER NOT NULL,
    at            TEXT NOT NULL,
    by            TEXT NOT NULL
);
CREATE INDEX topups_resident ON topups (resident_id, id);

-- Deliveries to the city platform, written in the same transaction as the settlement or void.
CREATE TABLE push_outbox (
    seq             INTEGER PRIMARY KEY,
    settlement_id   TEXT NOT NULL REFERENCES settlements (id),
    kind            TEXT NOT NULL CHECK (kind IN ('settlement', 'void')),
    body            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    delivered_at    TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    UNIQUE (settlement_id, kind)
);
CREATE INDEX push_outbox_due ON push_outbox (next_attempt_at) WHERE delivered_at IS NULL;
