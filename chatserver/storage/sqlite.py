"""SQLite (aiosqlite) backend for staff accounts, the audit log and statistics.

The embedded default's durable store. Settings at open:

- ``secure_delete=ON``: deleted rows are overwritten, not left in free pages.
- ``journal_mode=DELETE``: the rollback journal is removed after each
  transaction, so no ``-wal`` file lingers next to the database.
- ``foreign_keys=ON``; a busy timeout so the CLI and the server can share the
  file.

One connection per store. SQLite transactions are per connection, so every
write goes through ``_write()``: an ``asyncio.Lock`` (one transaction at a
time from this process) around ``BEGIN IMMEDIATE`` (one writer across
processes, e.g. the server and ``chatserver staff add``).

Migrations are the numbered ``migrations/NNNN_name.sql`` files (the list
both backends share: ``schema.py``), applied in order at open, each in its
own transaction, and recorded in ``schema_migrations``.
Design: docs/design/staff-auth.md, docs/design/audit.md.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

from chatserver.errors import AccountExists
from chatserver.storage.base import (
    MAX_LOCK_DOUBLINGS,
    AuditEntry,
    LockoutPolicy,
    LoginAttempt,
    NewStaff,
    NextEntry,
    ReturnRow,
    StaffRecord,
    join_languages,
    split_languages,
)
from chatserver.storage.schema import COPY_COLUMNS, ORDER_BY, migrations
from chatserver.storage.sqlite_audit_cuts import SqliteAuditCuts
from chatserver.storage.sqlite_partners import SqlitePartners

__all__ = ["SqliteStore", "migrations"]

# How long a statement waits for another process's write lock before failing.
BUSY_TIMEOUT_SECS = 5.0

_STAFF_COLUMNS = (
    "id, username, password_hash, totp_seed_sealed, totp_last_timecode, role, alias,"
    " capacity, disabled, failed_logins, locked_until, created_at, languages"
)
_AUDIT_COLUMNS = "seq, at, actor, action, conversation, detail, prev_hash, hash, chain"


def _staff(row: sqlite3.Row) -> StaffRecord:
    return StaffRecord(
        id=row["id"],
        username=row["username"],
        password_hash=row["password_hash"],
        totp_seed_sealed=bytes(row["totp_seed_sealed"]),
        totp_last_timecode=row["totp_last_timecode"],
        role=row["role"],
        alias=row["alias"],
        capacity=row["capacity"],
        disabled=bool(row["disabled"]),
        failed_logins=row["failed_logins"],
        locked_until=row["locked_until"],
        created_at=row["created_at"],
        languages=split_languages(row["languages"]),
    )


def _audit(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        seq=row["seq"],
        at=row["at"],
        actor=row["actor"],
        action=row["action"],
        conversation=row["conversation"],
        detail=row["detail"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        chain=row["chain"],
    )


def _statements(script: str) -> list[str]:
    """Split a migration into statements (trigger bodies stay whole).

    ``executescript`` would commit any open transaction first, so migrations
    are run statement by statement inside our own transaction instead.
    """
    out: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        if not pending and (not line.strip() or line.lstrip().startswith("--")):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    if pending.strip():
        raise RuntimeError("migration ends inside a statement")
    return out


def _utc_now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class _Opening:
    """``await SqliteStore.open(p)`` or ``async with SqliteStore.open(p) as store``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = path
        self._store: SqliteStore | None = None

    def __await__(self) -> Generator[Any, None, SqliteStore]:
        return SqliteStore._connect(self._path).__await__()

    async def __aenter__(self) -> SqliteStore:
        self._store = await SqliteStore._connect(self._path)
        return self._store

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._store is not None:
            await self._store.close()


class SqliteStore(SqlitePartners, SqliteAuditCuts):
    """Implements ``StaffStore``, ``AuditStore``, ``StatsStore`` and ``Pingable``."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        # Use SqliteStore.open(path); this takes an already configured connection.
        self._db = db
        self._lock = asyncio.Lock()
        self._audit_pending: list[tuple[NextEntry, asyncio.Future[AuditEntry]]] = []
        self._audit_flusher: asyncio.Task[None] | None = None

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> _Opening:
        return _Opening(path)

    @classmethod
    async def _connect(cls, path: str | os.PathLike[str]) -> SqliteStore:
        if str(path) != ":memory:":
            _create_private(Path(path))
        db = await aiosqlite.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_SECS)
        try:
            db.row_factory = sqlite3.Row
            await db.execute("PRAGMA secure_delete = ON")
            await db.execute("PRAGMA foreign_keys = ON")
            await db.execute("PRAGMA journal_mode = DELETE")
            store = cls(db)
            await store._migrate()
        except BaseException:
            await db.close()
            raise
        return store

    async def close(self) -> None:
        if self._audit_flusher is not None:
            # Entries already handed in are committed before the connection goes.
            await asyncio.gather(self._audit_flusher, return_exceptions=True)
        await self._db.close()

    async def __aenter__(self) -> SqliteStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                if self._db.in_transaction:
                    await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def _migrate(self) -> None:
        await self._db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL"
            ") STRICT"
        )
        for version, name, sql in migrations():
            async with self._write() as db:
                # Checked inside the write transaction: another process may
                # have applied it while we waited for the lock.
                cur = await db.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
                )
                if await cur.fetchone() is not None:
                    continue
                for statement in _statements(sql):
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, _utc_now_iso()),
                )

    async def schema_versions(self) -> list[int]:
        rows = await self._db.execute_fetchall(
            "SELECT version FROM schema_migrations ORDER BY version"
        )
        return [row[0] for row in rows]

    async def ping(self) -> bool:
        try:
            cur = await self._db.execute("SELECT 1")
            return await cur.fetchone() is not None
        except (sqlite3.Error, ValueError):
            # ValueError: aiosqlite's "no active connection" after close.
            return False

    # -- return codes --------------------------------------------------------

    async def add_return_code(self, lookup: bytes, row_id: str, sealed: bytes,
                              expires_at: float) -> bool:
        """False if the lookup key exists already (a 2^-64 collision; the caller
        draws a new passphrase)."""
        try:
            async with self._write() as db:
                await db.execute(
                    "INSERT INTO return_codes (lookup, row_id, sealed, expires_at)"
                    " VALUES (?, ?, ?, ?)", (lookup, row_id, sealed, expires_at))
        except sqlite3.IntegrityError:
            return False
        return True

    async def redeem_return_code(self, lookup: bytes) -> ReturnRow | None:
        # One statement: the row is gone for everyone else the moment it is read.
        async with self._write() as db:
            cur = await db.execute(
                "DELETE FROM return_codes WHERE lookup = ? RETURNING row_id, sealed, expires_at",
                (lookup,))
            row = await cur.fetchone()
        if row is None:
            return None
        return ReturnRow(row_id=row[0], sealed=bytes(row[1]), expires_at=float(row[2]))

    async def purge_return_codes(self, now: float) -> int:
        async with self._write() as db:
            cur = await db.execute("DELETE FROM return_codes WHERE expires_at <= ?", (now,))
            return int(cur.rowcount)

    # -- staff -------------------------------------------------------------

    async def add_staff(self, new: NewStaff) -> StaffRecord:
        try:
            async with self._write() as db:
                cur = await db.execute(
                    "INSERT INTO staff (username, password_hash, totp_seed_sealed, role, alias,"
                    " capacity, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (
                        new.username,
                        new.password_hash,
                        new.totp_seed_sealed,
                        new.role,
                        new.alias,
                        new.capacity,
                        new.created_at,
                    ),
                )
                row = await cur.fetchone()
                await cur.close()
        except sqlite3.IntegrityError as exc:
            if "staff.username" in str(exc):
                raise AccountExists() from None
            raise
        record = await self.get_by_id(row[0]) if row is not None else None
        if record is None:  # INSERT ... RETURNING always yields the row
            raise RuntimeError("the new account was not found")
        return record

    async def get_by_username(self, username: str) -> StaffRecord | None:
        cur = await self._db.execute(
            f"SELECT {_STAFF_COLUMNS} FROM staff WHERE username = ?",  # noqa: S608 - constant column list
            (username,),
        )
        row = await cur.fetchone()
        return _staff(row) if row is not None else None

    async def get_by_id(self, staff_id: int) -> StaffRecord | None:
        # One worker-thread hop (execute_fetchall), not two (execute + fetchone):
        # this runs before every staff action.
        rows = await self._db.execute_fetchall(
            f"SELECT {_STAFF_COLUMNS} FROM staff WHERE id = ?",  # noqa: S608 - constant column list
            (staff_id,),
        )
        return _staff(next(iter(rows))) if rows else None

    async def disabled_staff_ids(self) -> set[int]:
        rows = await self._db.execute_fetchall("SELECT id FROM staff WHERE disabled = 1")
        return {int(row[0]) for row in rows}

    async def list_staff(self) -> list[StaffRecord]:
        rows = await self._db.execute_fetchall(
            f"SELECT {_STAFF_COLUMNS} FROM staff ORDER BY username"  # noqa: S608 - constant column list
        )
        return [_staff(row) for row in rows]

    async def set_disabled(self, staff_id: int, disabled: bool) -> None:
        async with self._write() as db:
            await db.execute(
                "UPDATE staff SET disabled = ? WHERE id = ?", (int(disabled), staff_id)
            )

    async def set_password_hash(self, staff_id: int, password_hash: str) -> None:
        async with self._write() as db:
            await db.execute(
                "UPDATE staff SET password_hash = ? WHERE id = ?", (password_hash, staff_id)
            )

    async def set_languages(self, staff_id: int, languages: tuple[str, ...]) -> None:
        async with self._write() as db:
            await db.execute(
                "UPDATE staff SET languages = ? WHERE id = ?", (join_languages(languages), staff_id)
            )

    async def reserve_login_attempt(
        self, staff_id: int, now: float, policy: LockoutPolicy
    ) -> LoginAttempt:
        # One statement decides: the lock test, the count and the new lock. Two
        # logins (or two server processes) cannot both pass the test on the
        # same count, so a lock that opens lets exactly one guess through.
        params = {
            "id": staff_id, "now": now, "max_failures": policy.max_failures,
            "base_secs": policy.base_secs, "max_secs": policy.max_secs,
            "doublings": MAX_LOCK_DOUBLINGS,
        }
        async with self._write() as db:
            # SET expressions read the row as it was, so ``failed_logins + 1``
            # is the new count; the CASE is LockoutPolicy.lock_secs in SQL.
            cur = await db.execute(
                "UPDATE staff SET failed_logins = failed_logins + 1,"
                " locked_until = CASE WHEN failed_logins + 1 >= :max_failures"
                " THEN :now + MIN(:base_secs << MIN(failed_logins + 1 - :max_failures,"
                " :doublings), :max_secs) ELSE NULL END"
                " WHERE id = :id AND (locked_until IS NULL OR locked_until <= :now)"
                " RETURNING failed_logins, locked_until",
                params,
            )
            row = await cur.fetchone()
            await cur.close()
            if row is not None:
                return LoginAttempt(True, int(row[0]), row[1])
            # Refused (locked, or no such account): read the lock in the same
            # transaction, only to tell the caller how long to wait.
            cur = await db.execute(
                "SELECT failed_logins, locked_until FROM staff WHERE id = ?", (staff_id,))
            row = await cur.fetchone()
            await cur.close()
        if row is None:
            return LoginAttempt(False, 0, None)
        return LoginAttempt(False, int(row[0]), row[1])

    async def reset_failures(self, staff_id: int) -> None:
        async with self._write() as db:
            await db.execute(
                "UPDATE staff SET failed_logins = 0, locked_until = NULL WHERE id = ?",
                (staff_id,),
            )

    async def accept_totp_timecode(self, staff_id: int, timecode: int) -> bool:
        # One statement, so two concurrent logins with the same code cannot
        # both pass: the second finds the column already at ``timecode``. The
        # same statement clears the failure count the attempt was admitted with.
        async with self._write() as db:
            cur = await db.execute(
                "UPDATE staff SET totp_last_timecode = ?, failed_logins = 0, locked_until = NULL"
                " WHERE id = ? AND (totp_last_timecode IS NULL OR totp_last_timecode < ?)",
                (timecode, staff_id, timecode),
            )
            return cur.rowcount == 1

    # -- audit -------------------------------------------------------------

    async def append_audit(self, next_entry: NextEntry) -> AuditEntry:
        """Group commit: entries appended while a commit is under way go into
        the next transaction together. Each caller still waits until its own
        entry is committed (audited before the effect is shown), but a busy
        evening costs one commit — two fsyncs and a journal file — per batch
        instead of per entry; one per entry capped the whole server at a few
        hundred claims and starts a second (docs/performance.md)."""
        fut: asyncio.Future[AuditEntry] = asyncio.get_running_loop().create_future()
        self._audit_pending.append((next_entry, fut))
        if self._audit_flusher is None or self._audit_flusher.done():
            self._audit_flusher = asyncio.create_task(self._flush_audit(),
                                                      name="audit-group-commit")
        return await fut

    async def _flush_audit(self) -> None:
        while self._audit_pending:
            batch, self._audit_pending = self._audit_pending, []
            done: list[tuple[asyncio.Future[AuditEntry], AuditEntry]] = []
            try:
                async with self._write() as db:
                    rows = await db.execute_fetchall(
                        f"SELECT {_AUDIT_COLUMNS} FROM audit ORDER BY seq DESC LIMIT 1"  # noqa: S608 - constant column list
                    )
                    last = _audit(next(iter(rows))) if rows else None
                    for make, fut in batch:
                        try:
                            entry = make(last)
                        except Exception as exc:  # this entry only; the chain goes on
                            if not fut.done():
                                fut.set_exception(exc)
                            continue
                        done.append((fut, entry))
                        last = entry
                    await db.executemany(
                        "INSERT INTO audit (seq, at, actor, action, conversation, detail,"
                        " prev_hash, hash, chain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [(e.seq, e.at, e.actor, e.action, e.conversation, e.detail,
                          e.prev_hash, e.hash, e.chain) for _, e in done],
                    )
            except BaseException as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc if isinstance(exc, Exception)
                                          else RuntimeError("audit append interrupted"))
                if not isinstance(exc, Exception):
                    raise
                continue
            for fut, entry in done:
                if not fut.done():
                    fut.set_result(entry)

    async def iter_audit(self) -> AsyncGenerator[AuditEntry, None]:
        async with self._db.execute(
            f"SELECT {_AUDIT_COLUMNS} FROM audit ORDER BY seq"  # noqa: S608 - constant column list
        ) as cur:
            async for row in cur:
                yield _audit(row)

    async def audit_head(self) -> AuditEntry | None:
        cur = await self._db.execute(
            f"SELECT {_AUDIT_COLUMNS} FROM audit ORDER BY seq DESC LIMIT 1"  # noqa: S608 - constant column list
        )
        row = await cur.fetchone()
        return _audit(row) if row is not None else None

    # -- statistics --------------------------------------------------------

    async def add_counts(self, month: str, counts: Mapping[tuple[str, str], int]) -> None:
        rows = [(month, dim, value, n) for (dim, value), n in counts.items() if n > 0]
        if not rows:
            return
        async with self._write() as db:
            await db.executemany(
                "INSERT INTO stats (month, dimension, value, count) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (month, dimension, value) DO UPDATE"
                " SET count = count + excluded.count",
                rows,
            )

    async def get_counts(self, month: str) -> dict[tuple[str, str], int]:
        rows = await self._db.execute_fetchall(
            "SELECT dimension, value, count FROM stats WHERE month = ?", (month,)
        )
        return {(row[0], row[1]): row[2] for row in rows}

    async def counts_between(self, first: str, last: str
                             ) -> dict[tuple[str, str, str], int]:
        rows = await self._db.execute_fetchall(
            "SELECT month, dimension, value, count FROM stats WHERE month BETWEEN ? AND ?",
            (first, last))
        return {(row[0], row[1], row[2]): row[3] for row in rows}

    async def set_manual_count(self, month: str, kind: str, count: int) -> int | None:
        async with self._write() as db:
            cur = await db.execute(
                "SELECT count FROM stats_manual WHERE month = ? AND kind = ?", (month, kind))
            row = await cur.fetchone()
            await db.execute(
                "INSERT INTO stats_manual (month, kind, count) VALUES (?, ?, ?)"
                " ON CONFLICT (month, kind) DO UPDATE SET count = excluded.count",
                (month, kind, count))
        return int(row[0]) if row is not None else None

    async def manual_counts_between(self, first: str, last: str
                                    ) -> dict[tuple[str, str], int]:
        rows = await self._db.execute_fetchall(
            "SELECT month, kind, count FROM stats_manual WHERE month BETWEEN ? AND ?",
            (first, last))
        return {(row[0], row[1]): row[2] for row in rows}

    # -- one-shot copy to another backend ------------------------------------

    async def dump_copy(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every durable table, as ``schema.COPY_COLUMNS`` lists
        them, read in one transaction (a consistent snapshot)."""
        out: dict[str, list[tuple[Any, ...]]] = {}
        async with self._write() as db:
            for table, columns in COPY_COLUMNS.items():
                rows = await db.execute_fetchall(
                    f"SELECT {', '.join(columns)} FROM {table} ORDER BY {ORDER_BY[table]}")  # noqa: S608 - constant names
                out[table] = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                              for row in rows]
        return out


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only, before SQLite opens it.

    SQLite gives its journal the database file's permissions, so this covers
    both.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
