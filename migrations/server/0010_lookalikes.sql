-- Pairs of residents whose face templates look like one person's (issue 12, duplicate
-- enrolment): 'confirmed' when staff enrolled the second one anyway with a reason (twins, a
-- look-alike), 'found' when the administrator's scan came upon them. One row per pair, the
-- smaller id first; a scan never overwrites a confirmed pair. Never edit once landed.
CREATE TABLE lookalike_pairs (
    resident_a   INTEGER NOT NULL REFERENCES residents (id),
    resident_b   INTEGER NOT NULL REFERENCES residents (id),
    score        REAL NOT NULL CHECK (score >= -1 AND score <= 1),
    state        TEXT NOT NULL CHECK (state IN ('found', 'confirmed')),
    reason       TEXT,
    confirmed_by TEXT,
    at           TEXT NOT NULL,
    PRIMARY KEY (resident_a, resident_b),
    CHECK (resident_a < resident_b),
    CHECK (state = 'found' OR (reason IS NOT NULL AND length(trim(reason)) > 0
                               AND confirmed_by IS NOT NULL))
) WITHOUT ROWID;
CREATE INDEX lookalike_pairs_b ON lookalike_pairs (resident_b);
