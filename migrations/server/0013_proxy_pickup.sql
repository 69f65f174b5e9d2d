-- Named proxy pickup (代取, issue 12): a registered carer (family member, neighbour, volunteer)
-- collects the meal of a homebound elder with the carer's OWN card. The meal is booked to the
-- elder and names the carer (`settlements.proxy_carer_id`); the statement counts such meals
-- apart. A carer's card code is unique and never a resident's card code (checked by `db::carers`
-- and, for writes that do not pass there, by the triggers below). Never edit once landed.
CREATE TABLE carers (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    card_code   TEXT NOT NULL UNIQUE,
    note        TEXT,
    created_at  TEXT NOT NULL
);
-- Which residents a carer may collect for. A link is removed by deleting its row (audited as
-- `carer.unlink`); meals settled while it stood keep their carer.
CREATE TABLE carer_links (
    carer_id    INTEGER NOT NULL REFERENCES carers (id),
    resident_id INTEGER NOT NULL REFERENCES residents (id),
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    PRIMARY KEY (carer_id, resident_id)
) WITHOUT ROWID;
CREATE INDEX carer_links_resident ON carer_links (resident_id);

CREATE TRIGGER carers_card_not_a_residents BEFORE INSERT ON carers
WHEN EXISTS (SELECT 1 FROM residents WHERE card_code = NEW.card_code)
BEGIN SELECT RAISE(ABORT, 'card_code: already a resident''s card'); END;
CREATE TRIGGER residents_card_not_a_carers BEFORE INSERT ON residents
WHEN EXISTS (SELECT 1 FROM carers WHERE card_code = NEW.card_code)
BEGIN SELECT RAISE(ABORT, 'card_code: already a carer''s card'); END;
CREATE TRIGGER residents_card_update_not_a_carers BEFORE UPDATE OF card_code ON residents
WHEN EXISTS (SELECT 1 FROM carers WHERE card_code = NEW.card_code)
BEGIN SELECT RAISE(ABORT, 'card_code: already a carer''s card'); END;

-- The carer who collected a 代取 meal; NULL for every other meal (and every row from before).
-- Under the books MAC only when set, so the MAC of every row with NULL is unchanged
-- (`db::books::SETTLEMENT_OPTIONAL_COLUMNS`).
ALTER TABLE settlements ADD COLUMN proxy_carer_id INTEGER REFERENCES carers (id);
-- The statement counts proxy meals per canteen: few rows, found without a scan of the month.
CREATE INDEX settlements_proxy ON settlements (period, canteen_id) WHERE proxy_carer_id IS NOT NULL;
