-- PostgreSQL form of 0007_audit_retention.sql (decision 0009): retention
-- checkpoints, and the audit delete trigger that allows deleting entries only
-- up to the newest checkpoint. UPDATE and TRUNCATE stay refused.

CREATE TABLE audit_checkpoint (
    seq  BIGINT  PRIMARY KEY,                      -- the last pruned entry
    hash TEXT    NOT NULL,                         -- its link (the first kept entry's prev_hash)
    at   TEXT    NOT NULL,                         -- when the cut was made, UTC ISO-8601 'Z'
    mac  TEXT    NOT NULL                          -- keyed MAC over (seq, hash, at)
);

-- Checkpoints only move forward (whether one is genuine is its MAC's business).
CREATE FUNCTION audit_checkpoint_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq <= COALESCE((SELECT max(seq) FROM audit_checkpoint), 0) THEN
        RAISE EXCEPTION 'an audit checkpoint must come after the last checkpoint';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_checkpoint_forward BEFORE INSERT ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoint_forward();
CREATE TRIGGER audit_checkpoint_no_change BEFORE UPDATE OR DELETE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON audit_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

CREATE FUNCTION audit_prune_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.seq > COALESCE((SELECT max(seq) FROM audit_checkpoint), 0) THEN
        RAISE EXCEPTION 'audit log is append-only: only entries up to a checkpoint can be pruned';
    END IF;
    RETURN OLD;
END;
$$;

DROP TRIGGER audit_no_delete ON audit;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_prune_only();
