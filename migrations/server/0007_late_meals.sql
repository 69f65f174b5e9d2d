-- Late meals (issue 11): how long after it was served a meal reached the server, in seconds,
-- when that was more than the server's `--late-after-hours` at the time; NULL when on time.
-- The statement lists late meals apart, so a meal written into a month after the fact is seen.
-- Older rows are NULL (nothing marked them). Never edit once landed.
ALTER TABLE settlements ADD COLUMN late_by_seconds INTEGER CHECK (late_by_seconds IS NULL OR late_by_seconds > 0);
CREATE INDEX settlements_late ON settlements (period) WHERE late_by_seconds IS NOT NULL;
