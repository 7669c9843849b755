-- Audit retention (docs/design/audit.md, "Retention"): entries older than
-- audit_retention_days are pruned from the front of the chain. Each prune
-- first records a checkpoint: the last pruned entry's seq and link, with a
-- MAC under the audit key (never in the database). `audit verify` starts the
-- chain from the checkpoint, so a cut without a genuine checkpoint, or a cut
-- in the middle, is reported as broken.

CREATE TABLE audit_checkpoint (
    seq  INTEGER PRIMARY KEY,                      -- the last pruned entry
    hash TEXT    NOT NULL,                         -- its link (the first kept entry's prev_hash)
    at   TEXT    NOT NULL,                         -- when the cut was made, UTC ISO-8601 'Z'
    mac  TEXT    NOT NULL                          -- keyed MAC over (seq, hash, at)
) STRICT;

-- Checkpoints only move forward, and once written never change. (Whether
-- one is genuine is its MAC's business: `store copy` writes checkpoints for
-- entries the target never had.)
CREATE TRIGGER audit_checkpoint_forward BEFORE INSERT ON audit_checkpoint
WHEN NEW.seq <= COALESCE((SELECT MAX(seq) FROM audit_checkpoint), 0)
BEGIN
    SELECT RAISE(ABORT, 'an audit checkpoint must come after the last checkpoint');
END;

CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint
BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;

CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint
BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;

-- Entries may now be deleted, but only up to the newest checkpoint. UPDATE
-- stays refused (audit_no_update, migration 0001). Someone with SQL access
-- can insert a checkpoint row or drop the trigger; without the audit key the
-- checkpoint's MAC is wrong, and a gap in seq breaks the chain: verify says so.
DROP TRIGGER audit_no_delete;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
WHEN OLD.seq > COALESCE((SELECT MAX(seq) FROM audit_checkpoint), 0)
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only: only entries up to a checkpoint can be pruned');
END;
