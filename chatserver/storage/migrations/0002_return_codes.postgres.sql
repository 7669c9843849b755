-- PostgreSQL form of 0002_return_codes.sql (decision 0009). The passphrase
-- itself is never stored: only its Argon2id-derived lookup key, a random row
-- id for the audit log, the counsellor id sealed under a second derivation,
-- and the expiry.
CREATE TABLE return_codes (
    lookup BYTEA PRIMARY KEY,
    row_id TEXT NOT NULL UNIQUE,
    sealed BYTEA NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX return_codes_expiry ON return_codes (expires_at);
