"""Audit retention checkpoints on PostgreSQL (``AuditCutStore``), mixed into
``PostgresStore``. The cut takes the appenders' advisory lock, so no node
appends between choosing the cut and deleting up to it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatserver.storage.audit_cuts import COLUMNS, AuditCheckpoint, Cut, MakeCheckpoint

if TYPE_CHECKING:
    import asyncpg

_ENTRY_COLUMNS = "seq, at, actor, action, conversation, detail, prev_hash, hash, chain"


class PostgresAuditCuts:
    if TYPE_CHECKING:
        _pool: asyncpg.Pool

    async def audit_checkpoints(self) -> list[AuditCheckpoint]:
        rows = await self._pool.fetch(
            f"SELECT {COLUMNS} FROM audit_checkpoint ORDER BY seq")  # noqa: S608 - constant column list
        return [AuditCheckpoint(int(r[0]), r[1], r[2], r[3]) for r in rows]

    async def cut_audit(self, before_at: str, make: MakeCheckpoint) -> Cut | None:
        # Imported here: base and postgres import this module.
        from chatserver.storage.base import AuditEntry
        from chatserver.storage.postgres import AUDIT_LOCK

        async with self._pool.acquire() as con, con.transaction():
            await con.execute("SELECT pg_advisory_xact_lock($1)", AUDIT_LOCK)
            # The head is never cut: the next entry chains onto it.
            r = await con.fetchrow(
                f"SELECT {_ENTRY_COLUMNS} FROM audit WHERE at < $1"  # noqa: S608 - constant column list
                " AND seq < (SELECT max(seq) FROM audit) ORDER BY seq DESC LIMIT 1",
                before_at)
            if r is None:
                return None
            last = AuditEntry(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], int(r[8]))
            checkpoint = make(last)
            await con.execute(
                f"INSERT INTO audit_checkpoint ({COLUMNS}) VALUES ($1, $2, $3, $4)",  # noqa: S608 - constant column list
                checkpoint.seq, checkpoint.hash, checkpoint.at, checkpoint.mac)
            status = await con.execute("DELETE FROM audit WHERE seq <= $1", checkpoint.seq)
        return Cut(checkpoint, int(status.split()[-1]))
