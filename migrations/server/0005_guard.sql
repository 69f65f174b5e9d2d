-- Integrity and privacy: the append-only, hash-chained audit log; national ID numbers sealed
-- for an audited reveal; a ledger of face-data purges. Never edit once landed.

-- Every void, correction, policy change, month close, consent change, export, login and other
-- sensitive act, written in the same transaction as the act itself. Each row carries the hash of
-- the one before it: hash = sha256(prev_hash || canonical JSON of the row), so a changed, dropped
-- or reordered row breaks the chain from that row on (`db::audit::verify`).
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,                -- UTC RFC 3339, from the injected clock
    actor     TEXT NOT NULL,                -- dashboard user name, 'admin-token' or 'kiosk:<id>'
    role      TEXT NOT NULL,
    action    TEXT NOT NULL,                -- e.g. 'settlement.void', 'login.failure'
    target    TEXT NOT NULL,                -- what was acted on ('settlement:<uuid>', 'month:2026-03')
    detail    TEXT NOT NULL,                -- a JSON object
    prev_hash TEXT NOT NULL,                -- 64 zeros for the first row
    hash      TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_log_action ON audit_log (action, seq);

-- Append-only: the database itself refuses to change or remove a row.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- The full national ID number, sealed with XChaCha20-Poly1305 under a subkey of the server's
-- secret key file (never in the database), a random nonce per row and the blind index as
-- associated data. Rows written before this migration have NULL here: the number was never kept.
ALTER TABLE residents ADD COLUMN national_id_nonce BLOB;
ALTER TABLE residents ADD COLUMN national_id_sealed BLOB;

-- Each time a resident's face templates were deleted, and why: consent withdrawn, death, or a
-- deletion on request. For the face-data page (how much the system holds, what it let go).
CREATE TABLE face_data_purges (
    id          INTEGER PRIMARY KEY,
    resident_id INTEGER NOT NULL REFERENCES residents (id),
    reason      TEXT NOT NULL CHECK (reason IN ('withdrawal', 'death', 'deletion')),
    templates   INTEGER NOT NULL,
    at          TEXT NOT NULL,
    by          TEXT NOT NULL
);
CREATE INDEX face_data_purges_at ON face_data_purges (at);
