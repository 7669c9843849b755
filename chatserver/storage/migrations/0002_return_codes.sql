-- Return passphrases (docs/design/returning.md). The passphrase itself is never
-- stored: only its Argon2id-derived lookup key, a random row id for the audit
-- log, the counsellor id sealed under a second derivation, and the expiry.
CREATE TABLE return_codes (
    lookup BLOB PRIMARY KEY,
    row_id TEXT NOT NULL UNIQUE,
    sealed BLOB NOT NULL,
    expires_at REAL NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX return_codes_expiry ON return_codes (expires_at);
