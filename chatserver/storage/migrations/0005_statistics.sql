-- Statistics the funders ask for that no event counts: outreach activities
-- (meetings, seminars, trainings) and contacts by other channels (phone,
-- visit), entered by hand per month (docs/statistics.md). One row per month
-- and kind; a correction replaces the value (the audit log keeps old -> new).
-- Aggregate counts only: no names, no dates finer than the month, no text.
CREATE TABLE stats_manual (
    month TEXT    NOT NULL,                    -- 'YYYY-MM'
    kind  TEXT    NOT NULL,                    -- meeting, seminar, training, phone, visit
    count INTEGER NOT NULL CHECK (count >= 0),
    PRIMARY KEY (month, kind)
) STRICT, WITHOUT ROWID;
