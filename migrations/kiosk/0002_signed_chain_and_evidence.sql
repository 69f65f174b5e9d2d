-- Signed, hash-chained settlements (domain::signing) and encrypted evidence photos.
-- Never edit once landed; add 0003_... instead.

-- Every outbox item is record `seq` of this kiosk's chain (1, 2, 3, ...), assigned in the same
-- transaction as the item. NULL only for rows written before this migration (never signed).
ALTER TABLE outbox ADD COLUMN seq INTEGER CHECK (seq IS NULL OR seq >= 1);
CREATE UNIQUE INDEX outbox_seq ON outbox (seq);

-- The head of the chain: the last assigned seq and its record_hash (the next record's prev_hash).
-- Starts at (0, GENESIS). Advanced only inside Store::commit_checkin's transaction.
CREATE TABLE chain_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL CHECK (seq >= 0),
    hash TEXT NOT NULL CHECK (length(hash) = 64)
) STRICT;
INSERT INTO chain_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Evidence photos (only when the kiosk's `evidence_photos` option is on): the aligned face crop
-- of the confirming frame as JPEG, encrypted with XChaCha20-Poly1305 (a subkey of the template
-- key, a fresh nonce per row, resident id and settlement id as associated data). Deleted after
-- the retention period and when the resident's face data is purged.
CREATE TABLE evidence (
    settlement_id TEXT PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
    resident_id   INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    nonce         BLOB NOT NULL,
    ciphertext    BLOB NOT NULL
) STRICT;
CREATE INDEX evidence_created ON evidence (created_at);
CREATE INDEX evidence_resident ON evidence (resident_id);
