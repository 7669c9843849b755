-- PostgreSQL form of 0003_audit_chain_version.sql (decision 0009): the audit
-- chain's version per entry, 1 (unkeyed) or 2 (keyed); the default is 1, as
-- on SQLite, so both backends hold the same rows and the same chain.
ALTER TABLE audit ADD COLUMN chain INTEGER NOT NULL DEFAULT 1 CHECK (chain IN (1, 2));
