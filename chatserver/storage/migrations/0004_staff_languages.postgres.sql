-- PostgreSQL form of 0004_staff_languages.sql (decision 0009): the languages a
-- staff member speaks, comma-separated codes, '' for none; the same default as
-- on SQLite, so both backends hold the same rows.
ALTER TABLE staff ADD COLUMN languages TEXT NOT NULL DEFAULT '';
