-- Carers (代取人) as the kiosk holds them (zhucan_domain::api::KioskCarer): the name, the card
-- code as a keyed hash, and the residents they may collect meals for. Every sync answer
-- replaces the whole table. Never edit once landed.
CREATE TABLE carers (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    -- zhucan_domain::api::card_index of the carer's card code under the kiosk's card key
    card_index TEXT NOT NULL,
    json       TEXT NOT NULL
) STRICT;
CREATE INDEX carers_card ON carers (card_index);
