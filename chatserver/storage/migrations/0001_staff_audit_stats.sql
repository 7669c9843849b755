-- Staff accounts, the append-only audit log and monthly statistics.
-- Design: docs/design/staff-auth.md, docs/design/audit.md.
-- Nothing here holds conversation content: see docs/promises.md, promise 1.

CREATE TABLE staff (
    id                 INTEGER PRIMARY KEY,
    username           TEXT    NOT NULL UNIQUE,
    password_hash      TEXT    NOT NULL,           -- argon2id PHC string
    totp_seed_sealed   BLOB    NOT NULL,           -- SecretBox under secrets.totp_key
    totp_last_timecode INTEGER,                    -- last accepted TOTP step (replay rule)
    role               TEXT    NOT NULL
                       CHECK (role IN ('counsellor', 'liaison', 'operator', 'admin')),
    alias              TEXT    NOT NULL,           -- the only name youths ever see
    capacity           INTEGER NOT NULL CHECK (capacity >= 0),
    disabled           INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    failed_logins      INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until       REAL,                       -- Unix seconds, UTC
    created_at         TEXT    NOT NULL            -- UTC ISO-8601, 'Z'
) STRICT;

CREATE TABLE audit (
    seq          INTEGER PRIMARY KEY,              -- assigned by the appender: 1, 2, 3...
    at           TEXT    NOT NULL,                 -- UTC ISO-8601, 'Z'
    actor        TEXT    NOT NULL,                 -- staff username, 'youth', 'system', 'cli', 'unknown'
    action       TEXT    NOT NULL,
    conversation TEXT,                             -- pseudonym "c-xxxxxxxx", never a wire id
    detail       TEXT    NOT NULL,                 -- canonical JSON, allowlisted keys only
    prev_hash    TEXT    NOT NULL,
    hash         TEXT    NOT NULL
) STRICT;

-- Append-only: the database itself refuses to change or remove an entry.
-- (Someone with file access can drop these triggers; the hash chain is what
-- detects that. See docs/design/audit.md.)
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;

CREATE TABLE stats (
    month     TEXT    NOT NULL,                    -- 'YYYY-MM' (UTC)
    dimension TEXT    NOT NULL,
    value     TEXT    NOT NULL,
    count     INTEGER NOT NULL CHECK (count >= 0),
    PRIMARY KEY (month, dimension, value)
) STRICT, WITHOUT ROWID;
