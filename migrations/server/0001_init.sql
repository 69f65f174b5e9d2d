-- Zhucan server schema, version 1. Never edit once landed: add 0002_*.sql instead.
-- Money is integer fen. Timestamps are UTC RFC 3339 text; local dates are YYYY-MM-DD text.

CREATE TABLE towns (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

CREATE TABLE canteens (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL,
    kind               TEXT NOT NULL CHECK (kind IN ('demonstration_centre', 'care_centre', 'station')),
    town               TEXT NOT NULL REFERENCES towns (code),
    operator           TEXT NOT NULL,
    operator_kind      TEXT NOT NULL CHECK (operator_kind IN ('village_run', 'contracted')),
    delivery_surcharge INTEGER CHECK (delivery_surcharge IS NULL OR delivery_surcharge >= 0)
);

CREATE TABLE canteen_slots (
    canteen_id INTEGER NOT NULL REFERENCES canteens (id),
    slot       TEXT NOT NULL CHECK (slot IN ('breakfast', 'lunch', 'dinner')),
    start_time TEXT NOT NULL,
    end_time   TEXT NOT NULL,
    price      INTEGER NOT NULL CHECK (price >= 0),
    PRIMARY KEY (canteen_id, slot)
);

CREATE TABLE residents (
    id                  INTEGER PRIMARY KEY,
    name                TEXT NOT NULL,
    sex                 TEXT NOT NULL CHECK (sex IN ('male', 'female')),
    birth_date          TEXT NOT NULL,
    -- HMAC-SHA256 of the full national ID number under the server's secret key: look-up only.
    national_id_index   TEXT NOT NULL UNIQUE,
    national_id_masked  TEXT NOT NULL,
    local_registration  INTEGER NOT NULL CHECK (local_registration IN (0, 1)),
    registered_town     TEXT NOT NULL REFERENCES towns (code),
    residence_town      TEXT NOT NULL REFERENCES towns (code),
    status              TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'deceased')),
    deceased_on         TEXT,
    card_code           TEXT NOT NULL UNIQUE,
    designated_canteen  INTEGER REFERENCES canteens (id),
    prepaid_balance     INTEGER,
    -- Current consent, kept in step with the latest consent_records row of each kind.
    consent_face        INTEGER NOT NULL DEFAULT 0,
    consent_sharing     INTEGER NOT NULL DEFAULT 0,
    face_enrolled       INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT NOT NULL,
    CHECK ((status = 'deceased') = (deceased_on IS NOT NULL))
);
CREATE INDEX residents_residence_town ON residents (residence_town);

CREATE TABLE resident_categories (
    resident_id INTEGER NOT NULL REFERENCES residents (id),
    category    TEXT NOT NULL,
    PRIMARY KEY (resident_id, category)
) WITHOUT ROWID;

CREATE TABLE consent_records (
    id          INTEGER PRIMARY KEY,
    resident_id INTEGER NOT NULL REFERENCES residents (id),
    kind        TEXT NOT NULL CHECK (kind IN ('face_enrolment', 'template_sharing')),
    granted     INTEGER NOT NULL CHECK (granted IN (0, 1)),
    at          TEXT NOT NULL,
    by          TEXT NOT NULL
);
CREATE INDEX consent_records_resident ON consent_records (resident_id, kind, id);

CREATE TABLE policies (
    id             TEXT NOT NULL,
    version        INTEGER NOT NULL,
    name           TEXT NOT NULL,
    effective_from TEXT NOT NULL,
    effective_to   TEXT,
    json           TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (id, version)
);

CREATE TABLE kiosks (
    id         INTEGER PRIMARY KEY,
    canteen_id INTEGER NOT NULL REFERENCES canteens (id),
    name       TEXT NOT NULL,
    -- sha256 (hex) of the random bearer token, which is shown once and never stored.
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE closed_months (
    month     TEXT PRIMARY KEY,
    closed_at TEXT NOT NULL,
    closed_by TEXT NOT NULL
);

CREATE TABLE settlements (
    id              TEXT PRIMARY KEY,          -- UUIDv7 made on the kiosk
    kiosk_id        INTEGER REFERENCES kiosks (id),
    canteen_id      INTEGER NOT NULL REFERENCES canteens (id),
    resident_id     INTEGER NOT NULL REFERENCES residents (id),
    served_at       TEXT NOT NULL,             -- UTC RFC 3339
    local_date      TEXT NOT NULL,             -- YYYY-MM-DD in the configured time zone
    slot            TEXT,                      -- NULL when rejected outside any slot window
    method          TEXT NOT NULL CHECK (method IN ('face', 'card', 'staff')),
    match_score     REAL,
    liveness_score  REAL,
    delivered       INTEGER NOT NULL,
    staff_reason    TEXT,
    outcome         TEXT NOT NULL CHECK (outcome IN ('accepted', 'rejected')),
    rejection       TEXT,
    price           INTEGER NOT NULL DEFAULT 0,
    subsidy         INTEGER NOT NULL DEFAULT 0,
    self_pay        INTEGER NOT NULL DEFAULT 0,
    payment         TEXT,
    city_fen        INTEGER NOT NULL DEFAULT 0,
    town_fen        INTEGER NOT NULL DEFAULT 0,
    other_fen       INTEGER NOT NULL DEFAULT 0,
    funding_town    TEXT,
    tier            TEXT,
    eligibility     TEXT,                      -- 'subsidised' or a NotEligible code
    policy_id       TEXT,
    policy_version  INTEGER,
    received_at     TEXT NOT NULL,
    request_hash    TEXT NOT NULL,             -- sha256 of the canonical item JSON
    voided_at       TEXT,
    void_reason     TEXT,
    voided_by       TEXT,
    period          TEXT NOT NULL,             -- YYYY-MM the amounts count in
    CHECK (subsidy + self_pay = price),
    CHECK (city_fen + town_fen + other_fen = subsidy)
);
-- The per-item answer, replayed verbatim when a kiosk posts the same id again. Kept out of
-- `settlements` so the rows the reports scan stay narrow.
CREATE TABLE settlement_answers (
    settlement_id TEXT PRIMARY KEY REFERENCES settlements (id),
    answer        TEXT NOT NULL
) WITHOUT ROWID;

CREATE INDEX settlements_resident_period ON settlements (resident_id, period);
CREATE INDEX settlements_canteen_date ON settlements (canteen_id, local_date);
-- The month statement: a covering, partial index in group order, so the aggregation reads only
-- the index (no table look-ups, no sort).
CREATE INDEX settlements_statement ON settlements
    (period, canteen_id, resident_id, funding_town, price, subsidy, self_pay, city_fen, town_fen,
     other_fen, outcome, voided_at)
    WHERE outcome = 'accepted' AND voided_at IS NULL;
CREATE INDEX settlements_voided ON settlements (period) WHERE voided_at IS NOT NULL;

CREATE TABLE adjustments (
    id            INTEGER PRIMARY KEY,
    settlement_id TEXT NOT NULL UNIQUE REFERENCES settlements (id),
    period        TEXT NOT NULL,               -- the open month it lands in
    original_period TEXT NOT NULL,
    canteen_id    INTEGER NOT NULL REFERENCES canteens (id),
    resident_id   INTEGER NOT NULL REFERENCES residents (id),
    funding_town  TEXT,
    meals         INTEGER NOT NULL,            -- -1: one meal taken back
    subsidised_meals INTEGER NOT NULL,
    price         INTEGER NOT NULL,
    subsidy       INTEGER NOT NULL,
    self_pay      INTEGER NOT NULL,
    city_fen      INTEGER NOT NULL,
    town_fen      INTEGER NOT NULL,
    other_fen     INTEGER NOT NULL,
    reason        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    created_by    TEXT NOT NULL
);
CREATE INDEX adjustments_period ON adjustments (period, canteen_id);
