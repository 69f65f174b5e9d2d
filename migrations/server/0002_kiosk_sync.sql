-- Kiosk enrolment codes, heartbeats, face templates (encrypted) and the change log that drives
-- incremental kiosk sync. Never edit once landed: add 0003_*.sql instead.

-- Every write that changes what a kiosk holds appends one row here in the same transaction.
-- `seq` only grows (AUTOINCREMENT never reuses a value), so it is the kiosks' sync cursor.
CREATE TABLE changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL CHECK (kind IN ('resident', 'templates', 'policy', 'canteen', 'meal', 'void')),
    subject_id  INTEGER,                       -- resident or canteen id
    subject_key TEXT,                          -- settlement id, or policy 'id:version'
    at          TEXT NOT NULL
);
CREATE INDEX changes_kind_seq ON changes (kind, seq);

-- One-time codes a new kiosk registers with. Only the sha256 of the code is kept.
CREATE TABLE enrolment_codes (
    code_hash  TEXT PRIMARY KEY,
    canteen_id INTEGER NOT NULL REFERENCES canteens (id),
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    kiosk_id   INTEGER REFERENCES kiosks (id)
) WITHOUT ROWID;

-- Face templates: each embedding sealed with XChaCha20-Poly1305 under the server's template key,
-- a random nonce per row and the resident id as associated data. Never stored in the clear.
CREATE TABLE face_templates (
    id               INTEGER PRIMARY KEY,
    resident_id      INTEGER NOT NULL REFERENCES residents (id),
    enrolled_canteen INTEGER NOT NULL REFERENCES canteens (id),
    model            TEXT NOT NULL,
    dim              INTEGER NOT NULL,
    nonce            BLOB NOT NULL,
    ciphertext       BLOB NOT NULL,
    created_at       TEXT NOT NULL,
    kiosk_id         INTEGER REFERENCES kiosks (id)
);
CREATE INDEX face_templates_resident ON face_templates (resident_id);

-- What the kiosk last reported (heartbeat), for the dashboard.
ALTER TABLE kiosks ADD COLUMN last_seen_at TEXT;
ALTER TABLE kiosks ADD COLUMN outbox_backlog INTEGER;
ALTER TABLE kiosks ADD COLUMN software_version TEXT;
ALTER TABLE kiosks ADD COLUMN model_version TEXT;
ALTER TABLE kiosks ADD COLUMN last_sync_cursor INTEGER;
