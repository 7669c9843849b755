-- PostgreSQL form of 0005_statistics.sql (decision 0009): hand-entered
-- monthly counts (outreach activities, other channels), one row per month
-- and kind, replaced on correction.
CREATE TABLE stats_manual (
    month TEXT   NOT NULL,                     -- 'YYYY-MM'
    kind  TEXT   NOT NULL,                     -- meeting, seminar, training, phone, visit
    count BIGINT NOT NULL CHECK (count >= 0),
    PRIMARY KEY (month, kind)
);
