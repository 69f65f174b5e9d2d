-- The accept thresholds each kiosk reports in its heartbeat (its open-set match threshold at its
-- gallery size, and its liveness threshold), 0..=1; NULL until it reports them.
-- A face meal it posts with a score below them is accepted and recorded as an integrity event
-- `below_kiosk_threshold` (its chain shows `flagged`). Never edit once landed.
ALTER TABLE kiosks ADD COLUMN match_threshold REAL
    CHECK (match_threshold IS NULL OR (match_threshold >= 0 AND match_threshold <= 1));
ALTER TABLE kiosks ADD COLUMN liveness_threshold REAL
    CHECK (liveness_threshold IS NULL OR (liveness_threshold >= 0 AND liveness_threshold <= 1));

-- integrity_events gains the kind `below_kiosk_threshold` (a CHECK cannot be altered in place:
-- the table is rebuilt with its rows).
CREATE TABLE integrity_events_v2 (
    id            INTEGER PRIMARY KEY,
    kiosk_id      INTEGER NOT NULL REFERENCES kiosks (id),
    kind          TEXT NOT NULL CHECK (kind IN ('signature_missing', 'signature_malformed',
                                                'signature_invalid', 'chain_fork',
                                                'below_kiosk_threshold')),
    seq           INTEGER,
    settlement_id TEXT,
    detail        TEXT NOT NULL,
    at            TEXT NOT NULL
);
INSERT INTO integrity_events_v2 (id, kiosk_id, kind, seq, settlement_id, detail, at)
    SELECT id, kiosk_id, kind, seq, settlement_id, detail, at FROM integrity_events;
DROP TABLE integrity_events;
ALTER TABLE integrity_events_v2 RENAME TO integrity_events;
CREATE INDEX integrity_events_kiosk ON integrity_events (kiosk_id, seq);
