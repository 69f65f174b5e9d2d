-- Rules real cities publish (issue 13): a district level above towns, counter prices within
-- bounds, and the lines of a meal beyond price/subsidy/self-pay.

-- The geography: city → district/county (区/县) → town/street (镇/街道).
CREATE TABLE districts (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
ALTER TABLE towns ADD COLUMN district TEXT REFERENCES districts (code);

-- A slot may let the counter price a meal (set meals, weighed dishes) within bounds.
ALTER TABLE canteen_slots ADD COLUMN price_min INTEGER CHECK (price_min IS NULL OR price_min >= 0);
ALTER TABLE canteen_slots ADD COLUMN price_max INTEGER
    CHECK (price_max IS NULL OR (price_min IS NOT NULL AND price_max >= price_min));

-- The lines of a meal. Every new column is NULL where it does not apply (and on every row
-- written before it existed), so the books MAC of those rows is unchanged: the MAC takes these
-- columns as (name, value) pairs, only when set (`db::books::SETTLEMENT_OPTIONAL_COLUMNS`).
--   counter_price     the price the counter gave (signed with the meal)
--   delivery_fee      the delivery fee as its own line, part of `price`
--   delivery_subsidy  the part of the fee a funder pays, part of `subsidy`
--   stacked, stacked_fen  the stacked subsidies applied (codes, comma-separated) and their sum,
--                     part of `subsidy`
--   county_fen, canteen_fen  the county (区/县) finance's and the canteen's own part of the
--                     subsidy. They are counted inside `other_fen`, which keeps meaning "neither
--                     city nor town", so 0001's CHECK (city + town + other = subsidy) still holds
--                     without rebuilding the table; `other_fen - county_fen - canteen_fen` is
--                     the other sources' part.
--   operating_fen, operating_source  the operating subsidy (运营补贴) paid to the canteen for
--                     this meal, beside its price, and who pays it
ALTER TABLE settlements ADD COLUMN counter_price INTEGER CHECK (counter_price IS NULL OR counter_price >= 0);
ALTER TABLE settlements ADD COLUMN delivery_fee INTEGER CHECK (delivery_fee IS NULL OR delivery_fee > 0);
ALTER TABLE settlements ADD COLUMN delivery_subsidy INTEGER
    CHECK (delivery_subsidy IS NULL
        OR (delivery_fee IS NOT NULL AND delivery_subsidy > 0 AND delivery_subsidy <= delivery_fee));
ALTER TABLE settlements ADD COLUMN stacked TEXT;
ALTER TABLE settlements ADD COLUMN stacked_fen INTEGER CHECK (stacked_fen IS NULL OR stacked_fen > 0);
ALTER TABLE settlements ADD COLUMN county_fen INTEGER CHECK (county_fen IS NULL OR county_fen > 0);
ALTER TABLE settlements ADD COLUMN canteen_fen INTEGER CHECK (canteen_fen IS NULL OR canteen_fen > 0);
ALTER TABLE settlements ADD COLUMN operating_fen INTEGER CHECK (operating_fen IS NULL OR operating_fen > 0);
ALTER TABLE settlements ADD COLUMN operating_source TEXT
    CHECK (operating_source IS NULL OR operating_source IN ('city', 'county', 'town', 'other', 'canteen'));

-- What a CHECK added by ALTER TABLE cannot say across columns (on insert; an edit of the file
-- afterwards is what the books MAC names).
CREATE TRIGGER settlements_lines_fit BEFORE INSERT ON settlements
    WHEN IFNULL(NEW.county_fen, 0) + IFNULL(NEW.canteen_fen, 0) > NEW.other_fen
      OR IFNULL(NEW.delivery_subsidy, 0) + IFNULL(NEW.stacked_fen, 0) > NEW.subsidy
      OR IFNULL(NEW.delivery_fee, 0) > NEW.price
      OR (NEW.operating_fen IS NULL) <> (NEW.operating_source IS NULL)
BEGIN
    SELECT RAISE(ABORT, 'settlement lines do not fit inside its price, subsidy and funding');
END;

-- An adjustment carries the same lines, negated for a meal taken back (NULL where zero).
ALTER TABLE adjustments ADD COLUMN delivery_fee INTEGER;
ALTER TABLE adjustments ADD COLUMN delivery_subsidy INTEGER;
ALTER TABLE adjustments ADD COLUMN county_fen INTEGER;
ALTER TABLE adjustments ADD COLUMN canteen_fen INTEGER;
ALTER TABLE adjustments ADD COLUMN operating_fen INTEGER;
ALTER TABLE adjustments ADD COLUMN operating_source TEXT;

-- The month statement's covering index, now with the new lines (the old one lacks them, so
-- the statement would read the table for every row), in the statement's group order (canteen,
-- resident, paying town, operating funder: no sort).
DROP INDEX settlements_statement;
CREATE INDEX settlements_statement ON settlements
    (period, canteen_id, resident_id, funding_town, operating_source, price, subsidy, self_pay,
     city_fen, town_fen, other_fen, county_fen, canteen_fen, delivery_fee, delivery_subsidy,
     operating_fen, outcome, voided_at)
    WHERE outcome = 'accepted' AND voided_at IS NULL;
