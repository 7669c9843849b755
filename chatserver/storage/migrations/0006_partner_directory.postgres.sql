-- PostgreSQL form of 0006_partner_directory.sql (decision 0009): the referral
-- partner directory, edited by operators; the same columns and defaults as on
-- SQLite, so both backends hold the same rows.
CREATE TABLE partners (
    code TEXT PRIMARY KEY,
    name_sv TEXT NOT NULL,
    name_en TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL,
    municipality TEXT NOT NULL DEFAULT '',
    districts TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    hours_sv TEXT NOT NULL,
    hours_en TEXT NOT NULL,
    notes TEXT NOT NULL DEFAULT '',
    words_sv TEXT NOT NULL DEFAULT '',
    words_en TEXT NOT NULL DEFAULT '',
    retired INTEGER NOT NULL DEFAULT 0 CHECK (retired IN (0, 1)),
    verified_by TEXT NOT NULL DEFAULT '',
    verified_at TEXT NOT NULL DEFAULT '',
    revision BIGINT NOT NULL
);
CREATE TABLE partner_directory (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
