-- Audit red flags (issue 12): what finance decided about each flag, the subsidy withheld on a
-- confirmed flag, the canteens' closed days and residents' absences the flags compare meals with.
-- Never edit once landed.

-- A flag's review, keyed by the month and the flag's stable key (flags themselves are computed).
CREATE TABLE flag_reviews (
    month      TEXT NOT NULL,
    flag_key   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('explained', 'confirmed')),
    note       TEXT NOT NULL,
    by_user    TEXT NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (month, flag_key)
) STRICT;

-- The subsidy of a meal behind a confirmed flag, withheld from what the month pays: one row per
-- meal, in the meal's period, under the books MAC like settlements and adjustments.
CREATE TABLE withholdings (
    settlement_id TEXT PRIMARY KEY REFERENCES settlements (id),
    period        TEXT NOT NULL,
    flag_key      TEXT NOT NULL,
    canteen_id    INTEGER NOT NULL REFERENCES canteens (id),
    resident_id   INTEGER NOT NULL REFERENCES residents (id),
    subsidy       INTEGER NOT NULL CHECK (subsidy >= 0),
    city_fen      INTEGER NOT NULL,
    town_fen      INTEGER NOT NULL,
    other_fen     INTEGER NOT NULL,
    funding_town  TEXT,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    mac           TEXT,
    CHECK (city_fen + town_fen + other_fen = subsidy)
);
CREATE INDEX withholdings_period ON withholdings (period, canteen_id);

-- Days a canteen did not open (holidays, repairs): meals on them are flagged.
CREATE TABLE canteen_closed_days (
    canteen_id INTEGER NOT NULL REFERENCES canteens (id),
    date       TEXT NOT NULL,
    reason     TEXT NOT NULL,
    PRIMARY KEY (canteen_id, date)
) STRICT;

-- A resident away (in hospital, with family elsewhere): meals in [from_date, to_date] are flagged.
CREATE TABLE resident_absences (
    id          INTEGER PRIMARY KEY,
    resident_id INTEGER NOT NULL REFERENCES residents (id),
    from_date   TEXT NOT NULL,
    to_date     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    CHECK (from_date <= to_date)
) STRICT;
CREATE INDEX resident_absences_resident ON resident_absences (resident_id, from_date);

-- The flags read the month's accepted meals through covering indexes (one pass each, no row
-- lookups): counts per canteen, day and slot with their methods and lateness; face scores per
-- resident and kiosk; each resident's attempts in time order.
CREATE INDEX settlements_flags ON settlements
    (period, canteen_id, local_date, slot, method, kiosk_id, late_by_seconds)
    WHERE outcome = 'accepted' AND voided_at IS NULL;
CREATE INDEX settlements_flags_face ON settlements
    (period, resident_id, kiosk_id, canteen_id, match_score, liveness_score)
    WHERE outcome = 'accepted' AND voided_at IS NULL AND method = 'face';
CREATE INDEX settlements_flags_time ON settlements
    (period, resident_id, served_at, canteen_id, outcome, id)
    WHERE voided_at IS NULL;
