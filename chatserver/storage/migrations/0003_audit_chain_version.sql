-- The audit chain's version, per entry (docs/design/audit.md, "Keyed chain").
-- 1: an unkeyed BLAKE2b-256 link. Every entry written before this migration
--    keeps 1 and stays verifiable exactly as it was.
-- 2: a keyed BLAKE2b-256 link (a MAC) under secrets.audit_key, which is never
--    in the database. The application writes 2 from now on; the first keyed
--    entry's prev_hash is the last unkeyed link, so the key seals the old part.
-- The default is 1, so a row inserted by old code is unkeyed, and verify
-- rejects an unkeyed entry after a keyed one.
ALTER TABLE audit ADD COLUMN chain INTEGER NOT NULL DEFAULT 1 CHECK (chain IN (1, 2));
