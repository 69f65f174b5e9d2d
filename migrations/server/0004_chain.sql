-- Signed, hash-chained settlement records: the kiosks' public keys, the chain links of the
-- records they sent, and the refused attempts. Never edit once landed: add 0005_*.sql instead.

-- A kiosk's Ed25519 public keys (base64 of 32 bytes). The key that verifies record `seq` is the
-- one with the largest `from_seq <= seq`; enrolment stores the first (from_seq 1), a rotation
-- adds the next.
CREATE TABLE kiosk_keys (
    kiosk_id   INTEGER NOT NULL REFERENCES kiosks (id),
    from_seq   INTEGER NOT NULL CHECK (from_seq >= 1),
    public_key TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (kiosk_id, from_seq)
) WITHOUT ROWID;

-- One row per signed record received from a kiosk (also when its meal was refused or errored,
-- so the chain has no false gap). `record_hash` is the sha256 of `payload`, the exact bytes the
-- kiosk signed; `prev_hash` is the record_hash of seq - 1 (32 zero bytes for seq 1).
-- `settled` is 1 when this record created the settlement row `settlement_id`.
CREATE TABLE chain_links (
    kiosk_id      INTEGER NOT NULL REFERENCES kiosks (id),
    seq           INTEGER NOT NULL CHECK (seq >= 1),
    record_hash   BLOB NOT NULL CHECK (length(record_hash) = 32),
    prev_hash     BLOB NOT NULL CHECK (length(prev_hash) = 32),
    settlement_id TEXT NOT NULL,
    settled       INTEGER NOT NULL CHECK (settled IN (0, 1)),
    signature     TEXT NOT NULL,
    payload       TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    PRIMARY KEY (kiosk_id, seq)
);
-- The chain check walks each kiosk's links in seq order reading only this index.
CREATE INDEX chain_links_check ON chain_links (kiosk_id, seq, prev_hash, record_hash, settled);

-- Records a kiosk sent that were refused for integrity: a missing, malformed or invalid
-- signature, or a second, different record for a seq already taken (a fork).
CREATE TABLE integrity_events (
    id            INTEGER PRIMARY KEY,
    kiosk_id      INTEGER NOT NULL REFERENCES kiosks (id),
    kind          TEXT NOT NULL CHECK (kind IN ('signature_missing', 'signature_malformed',
                                                'signature_invalid', 'chain_fork')),
    seq           INTEGER,
    settlement_id TEXT,
    detail        TEXT NOT NULL,
    at            TEXT NOT NULL
);
CREATE INDEX integrity_events_kiosk ON integrity_events (kiosk_id, seq);

-- The statement's per-kiosk meal counts (covering, partial, like settlements_statement) and a
-- kiosk's settlements for the full re-verification.
CREATE INDEX settlements_kiosk_statement ON settlements (period, kiosk_id, method, canteen_id)
    WHERE outcome = 'accepted' AND voided_at IS NULL;
CREATE INDEX settlements_kiosk ON settlements (kiosk_id) WHERE kiosk_id IS NOT NULL;
