-- Face templates deleted at this kiosk (unenrol) and not yet known to be gone everywhere.
-- Never edit once landed; add 0004_... instead.
--
-- A sync answer that the server built before it deleted the templates can arrive after the
-- kiosk deleted them here. While a resident has a row here, template sets for them are ignored
-- in every sync answer whose cursor is older than `server_cursor` (or in every answer, while the
-- server has not confirmed the deletion: `server_cursor` NULL, and the sync worker retries the
-- DELETE). The row goes once the kiosk has applied an answer at or past `server_cursor`: such an
-- answer was built after the deletion, so a template set in it is a new enrolment.
CREATE TABLE template_deletions (
    resident_id   INTEGER PRIMARY KEY,
    deleted_at    TEXT NOT NULL,
    server_cursor INTEGER CHECK (server_cursor IS NULL OR server_cursor >= 0)
) STRICT;
