-- The kiosk holds only what its decisions and its screen need of each resident
-- (zhucan_domain::api::KioskResident: name, the decision's facts, a keyed hash of the card code).
-- Never edit once landed; add 0005_... instead.
--
-- Rows stored before held the whole resident (sex, clear card code, designated canteen, consent
-- flags). They are dropped, their clear card codes with them (secure_delete overwrites them),
-- and the cursor goes back to 0 so the next sync is a full snapshot in the new shape. Until
-- then the kiosk knows no resident: face and card check-ins wait for that first sync.
DROP TABLE residents;
CREATE TABLE residents (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    -- zhucan_domain::api::card_index of the card code under the kiosk's card key; NULL: no card
    card_index TEXT,
    json       TEXT NOT NULL
) STRICT;
CREATE INDEX residents_card ON residents (card_index);
UPDATE settings SET value = '0' WHERE key = 'sync_cursor';
