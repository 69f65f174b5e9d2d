-- The kiosk's local store. Never edit once landed; add 0002_... instead.

-- Small key/value settings: server_url, kiosk_id, canteen_id, sync_cursor, last_sync_at.
-- The bearer token and the template key are NOT here: they live in the secret file.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- The kiosk's own canteen (domain::Canteen as JSON), from the last sync.
CREATE TABLE canteen (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    json TEXT NOT NULL
) STRICT;

-- Residents as the decision sees them (domain::Resident as JSON; no national ID number).
CREATE TABLE residents (
    id        INTEGER PRIMARY KEY,
    name      TEXT NOT NULL,
    card_code TEXT NOT NULL,
    json      TEXT NOT NULL
) STRICT;
CREATE INDEX residents_card ON residents (card_code);

-- Every policy version (domain::Policy as JSON); selected by meal date like the server does.
CREATE TABLE policies (
    id      TEXT NOT NULL,
    version INTEGER NOT NULL,
    json    TEXT NOT NULL,
    PRIMARY KEY (id, version)
) STRICT;

-- Face templates, encrypted with XChaCha20-Poly1305 (key from the secret file, a fresh nonce per
-- row, the resident id as associated data). Plaintext: little-endian f32.
CREATE TABLE templates (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    resident_id INTEGER NOT NULL,
    model       TEXT NOT NULL,
    nonce       BLOB NOT NULL,
    ciphertext  BLOB NOT NULL
) STRICT;
CREATE INDEX templates_resident ON templates (resident_id);

-- Accepted, not voided meals of the residents (from sync and from this kiosk's own decisions),
-- so that offline decisions use the same history as the server.
CREATE TABLE meals (
    id          TEXT PRIMARY KEY,
    resident_id INTEGER NOT NULL,
    date        TEXT NOT NULL,
    slot        TEXT NOT NULL,
    subsidy     INTEGER NOT NULL
) STRICT;
CREATE INDEX meals_resident ON meals (resident_id, date);

-- The outbox: every settlement this kiosk decided, committed before anything is sent.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,        -- UUIDv7, the settlement id on the server too
    item            TEXT NOT NULL,           -- api::SettlementItem as JSON
    local_decision  TEXT NOT NULL,           -- settle::Decision as JSON
    created_at      TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    acked_at        TEXT,
    parked_at       TEXT,                    -- a non-retryable error: kept, counted, not resent
    server_answer   TEXT,                    -- api::ItemResult as JSON
    differs         INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT
) STRICT;
CREATE INDEX outbox_pending ON outbox (acked_at, parked_at, next_attempt_at);
