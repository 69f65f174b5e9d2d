-- Four-eyes corrections (issue 12): a void or adjustment whose subsidy is above a limit, or of a
-- meal older than a number of days, is not applied by the person who asks for it. It waits here
-- until a second person (finance or admin, never the requester) approves it (the void is then
-- applied in the same transaction) or rejects it with a note. Rows are never deleted.
CREATE TABLE pending_corrections (
    id             INTEGER PRIMARY KEY,
    settlement_id  TEXT NOT NULL REFERENCES settlements (id),
    kind           TEXT NOT NULL CHECK (kind IN ('void', 'adjustment')),
    reason         TEXT NOT NULL,
    requested_by   TEXT NOT NULL,             -- 'admin' (the token) or 'user:<name>'
    requested_at   TEXT NOT NULL,             -- UTC RFC 3339
    state          TEXT NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'approved', 'rejected')),
    decided_by     TEXT,
    decided_at     TEXT,
    decision_note  TEXT,
    CHECK ((state = 'pending') = (decided_by IS NULL AND decided_at IS NULL)),
    CHECK (decided_by IS NULL OR decided_by <> requested_by)
);
-- At most one open request per meal.
CREATE UNIQUE INDEX pending_corrections_one_open
    ON pending_corrections (settlement_id) WHERE state = 'pending';
CREATE INDEX pending_corrections_state ON pending_corrections (state, id);
