-- No digit of a national ID number stays in clear (issue 11). The masked form
-- `330782********1234` beside the birth date column gave the whole number back to whoever held
-- a copy of the database. Display now opens the sealed number (`id_masked()`, registered by
-- `db::connect` with the server's key). Rows whose number is sealed lose their clear mask here;
-- older rows, whose number was never sealed, are sealed and cleared by the server when it next
-- opens the database with its key (`db::residents::seal_legacy`), as sealing needs that key.
-- The column stays (SQLite cannot drop a NOT NULL column without rebuilding the table) and new
-- rows write ''. Never edit once landed.
UPDATE residents SET national_id_masked = '' WHERE national_id_sealed IS NOT NULL;
