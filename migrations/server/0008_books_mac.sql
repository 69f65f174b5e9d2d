-- The books MAC (issue 11): every settlement and adjustment row carries a keyed MAC over every
-- column the statement sums or shows (amounts, outcome, funding, period, late mark, void), made
-- by the server with a subkey of its secret key file (`db::books`). A row edited in the
-- database file without that key no longer matches its MAC; the statement and the chain check
-- say which. Rows from before this migration are sealed once, when the server first opens the
-- database with its key (audited as `books.seal`); after that a row without a MAC is a finding.
-- Never edit once landed.
ALTER TABLE settlements ADD COLUMN mac TEXT;
ALTER TABLE adjustments ADD COLUMN mac TEXT;
-- Written once, when the rows from before this migration have been sealed.
CREATE TABLE books_sealed (
    settlements INTEGER NOT NULL,
    adjustments INTEGER NOT NULL
);
