-- Unannounced spot checks (抽查, issue 12): a city auditor counts the diners at a canteen during
-- a window of one local day; the meals the canteen recorded in that window are compared with the
-- count. The window is kept as entered (local date and times, HH:MM:SS) and as the UTC instants
-- it covers on that day in the configured zone, [starts_at, ends_at), in the settlements'
-- `served_at` format, so the comparison is plain SQL. A check is never changed or removed.
-- Never edit once landed.
CREATE TABLE spot_checks (
    id             INTEGER PRIMARY KEY,
    canteen_id     INTEGER NOT NULL REFERENCES canteens (id),
    local_date     TEXT NOT NULL,             -- YYYY-MM-DD in the configured time zone
    window_start   TEXT NOT NULL,             -- local HH:MM:SS
    window_end     TEXT NOT NULL,
    starts_at      TEXT NOT NULL,             -- UTC RFC 3339 (millis, Z)
    ends_at        TEXT NOT NULL,
    headcount      INTEGER NOT NULL CHECK (headcount >= 0),
    inspector      TEXT NOT NULL,             -- the user's name (or admin-token)
    inspector_role TEXT NOT NULL,
    note           TEXT NOT NULL DEFAULT '',
    created_at     TEXT NOT NULL,             -- UTC RFC 3339
    CHECK (window_start < window_end),
    CHECK (starts_at < ends_at)
);
CREATE INDEX spot_checks_date ON spot_checks (local_date, canteen_id);

CREATE TRIGGER spot_checks_no_update BEFORE UPDATE ON spot_checks
BEGIN
    SELECT RAISE(ABORT, 'spot_checks is append-only');
END;
CREATE TRIGGER spot_checks_no_delete BEFORE DELETE ON spot_checks
BEGIN
    SELECT RAISE(ABORT, 'spot_checks is append-only');
END;
