"""PostgreSQL (asyncpg) backend for staff accounts, the audit log and statistics.

For several server processes on several machines, which cannot share a
SQLite file. It implements the same protocols as ``sqlite.SqliteStore`` and
passes the same contract tests (tests/unit/test_store_contract.py).

- A small connection pool per store (``POOL_MAX`` connections); every write
  is one statement or one transaction, so the database, not this process,
  keeps it atomic across processes and machines.
- The audit append takes ``pg_advisory_xact_lock(AUDIT_LOCK)`` before it
  reads the head, so appenders on different nodes queue instead of forking
  the chain. The rows and links are the same bytes as on SQLite, so
  ``chatserver audit verify`` works on either.
- Migrations are the ``migrations/NNNN_name.postgres.sql`` files, the same
  versions as SQLite's (``schema.py``), applied under an advisory lock at
  open, each in its own transaction, and recorded in ``schema_migrations``.

The password is passed apart from the URL (settings: the secrets file or
``CHAT_SECRET_DATABASE_PASSWORD``) and is never logged. Statement parameters
are never logged here; the server's own ``log_statement`` must stay ``none``
(docs/operations.md, "PostgreSQL").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from types import TracebackType
from typing import Any

import asyncpg

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
from chatserver.storage.postgres_audit_cuts import PostgresAuditCuts
from chatserver.storage.postgres_partners import PostgresPartners
from chatserver.storage.schema import COPY_COLUMNS, migrations

POOL_MIN = 1
POOL_MAX = 5
# Seconds a statement may wait for a connection or a lock before failing.
COMMAND_TIMEOUT_SECS = 10.0
# Advisory lock keys (any two distinct bigints this database uses for nothing else).
MIGRATE_LOCK = 0x63686174_0001  # "chat" + 1
AUDIT_LOCK = 0x63686174_0002

_STAFF_COLUMNS = (
    "id, username, password_hash, totp_seed_sealed, totp_last_timecode, role, alias,"
    " capacity, disabled, failed_logins, locked_until, created_at, languages"
)
_AUDIT_COLUMNS = "seq, at, actor, action, conversation, detail, prev_hash, hash, chain"


def _staff(row: asyncpg.Record) -> StaffRecord:
    return StaffRecord(
        id=int(row["id"]),
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


def _audit(row: asyncpg.Record) -> AuditEntry:
    return AuditEntry(
        seq=int(row["seq"]),
        at=row["at"],
        actor=row["actor"],
        action=row["action"],
        conversation=row["conversation"],
        detail=row["detail"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        chain=row["chain"],
    )


def _utc_now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _rows_changed(status: str) -> int:
    # asyncpg returns the command tag, e.g. "UPDATE 1" or "DELETE 3".
    return int(status.rsplit(" ", 1)[-1])


class _Opening:
    """``await PostgresStore.open(url)`` or ``async with PostgresStore.open(url) as store``."""

    def __init__(self, url: str, password: str | None) -> None:
        self._url = url
        self._password = password
        self._store: PostgresStore | None = None

    def __await__(self) -> Generator[Any, None, PostgresStore]:
        return PostgresStore._connect(self._url, self._password).__await__()

    async def __aenter__(self) -> PostgresStore:
        self._store = await PostgresStore._connect(self._url, self._password)
        return self._store

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._store is not None:
            await self._store.close()


class PostgresStore(PostgresPartners, PostgresAuditCuts):
    """Implements ``StaffStore``, ``AuditStore``, ``StatsStore``, ``ReturnStore``
    and ``Pingable`` on PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        # Use PostgresStore.open(url); this takes an already created pool.
        self._pool = pool
        self._audit_pending: list[tuple[NextEntry, asyncio.Future[AuditEntry]]] = []
        self._audit_flusher: asyncio.Task[None] | None = None

    @classmethod
    def open(cls, url: str, password: str | None = None) -> _Opening:
        return _Opening(url, password)

    @classmethod
    async def _connect(cls, url: str, password: str | None) -> PostgresStore:
        pool = await asyncpg.create_pool(
            url, password=password or None, min_size=POOL_MIN, max_size=POOL_MAX,
            command_timeout=COMMAND_TIMEOUT_SECS)
        try:
            store = cls(pool)
            await store._migrate()
        except BaseException:
            await pool.close()
            raise
        return store

    async def close(self) -> None:
        if self._audit_flusher is not None:
            # Entries already handed in are committed before the pool goes.
            await asyncio.gather(self._audit_flusher, return_exceptions=True)
        await self._pool.close()

    async def __aenter__(self) -> PostgresStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _migrate(self) -> None:
        async with self._pool.acquire() as con:
            for version, name, sql in [(0, "", ""), *migrations("postgresql")]:
                async with con.transaction():
                    # One migrator at a time across every node; the check is
                    # inside the lock, as another node may have just applied it.
                    await con.execute("SELECT pg_advisory_xact_lock($1)", MIGRATE_LOCK)
                    if version == 0:
                        # Looked up first: CREATE ... IF NOT EXISTS needs the
                        # right to create even when the table is there, and the
                        # runtime role of deploy/postgres/setup.sql has none.
                        if await con.fetchval("SELECT to_regclass('schema_migrations')") is None:
                            await con.execute(
                                "CREATE TABLE schema_migrations ("
                                " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                                " applied_at TEXT NOT NULL)")
                        continue
                    done = await con.fetchval(
                        "SELECT 1 FROM schema_migrations WHERE version = $1", version)
                    if done is not None:
                        continue
                    await con.execute(sql)  # several statements: simple query protocol
                    await con.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at)"
                        " VALUES ($1, $2, $3)", version, name, _utc_now_iso())

    async def schema_versions(self) -> list[int]:
        rows = await self._pool.fetch("SELECT version FROM schema_migrations ORDER BY version")
        return [int(row[0]) for row in rows]

    async def ping(self) -> bool:
        try:
            return bool(await self._pool.fetchval("SELECT 1") == 1)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            # InterfaceError: the pool is closed.
            return False

    # -- return codes --------------------------------------------------------

    async def add_return_code(self, lookup: bytes, row_id: str, sealed: bytes,
                              expires_at: float) -> bool:
        """False if the lookup key exists already (a 2^-64 collision; the caller
        draws a new passphrase)."""
        try:
            await self._pool.execute(
                "INSERT INTO return_codes (lookup, row_id, sealed, expires_at)"
                " VALUES ($1, $2, $3, $4)", lookup, row_id, sealed, expires_at)
        except asyncpg.UniqueViolationError:
            return False
        return True

    async def redeem_return_code(self, lookup: bytes) -> ReturnRow | None:
        # One statement: of two nodes redeeming at once, the second deletes nothing.
        row = await self._pool.fetchrow(
            "DELETE FROM return_codes WHERE lookup = $1 RETURNING row_id, sealed, expires_at",
            lookup)
        if row is None:
            return None
        return ReturnRow(row_id=row[0], sealed=bytes(row[1]), expires_at=float(row[2]))

    async def purge_return_codes(self, now: float) -> int:
        status = await self._pool.execute(
            "DELETE FROM return_codes WHERE expires_at <= $1", now)
        return _rows_changed(status)

    # -- staff -------------------------------------------------------------

    async def add_staff(self, new: NewStaff) -> StaffRecord:
        try:
            row = await self._pool.fetchrow(
                f"INSERT INTO staff (username, password_hash, totp_seed_sealed, role, alias,"  # noqa: S608 - constant column list
                f" capacity, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                f" RETURNING {_STAFF_COLUMNS}",
                new.username, new.password_hash, new.totp_seed_sealed, new.role,
                new.alias, new.capacity, new.created_at)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "staff_username_key":
                raise AccountExists() from None
            raise
        if row is None:  # INSERT ... RETURNING always yields the row
            raise RuntimeError("the new account was not found")
        return _staff(row)

    async def get_by_username(self, username: str) -> StaffRecord | None:
        row = await self._pool.fetchrow(
            f"SELECT {_STAFF_COLUMNS} FROM staff WHERE username = $1",  # noqa: S608 - constant column list
            username)
        return _staff(row) if row is not None else None

    async def get_by_id(self, staff_id: int) -> StaffRecord | None:
        row = await self._pool.fetchrow(
            f"SELECT {_STAFF_COLUMNS} FROM staff WHERE id = $1",  # noqa: S608 - constant column list
            staff_id)
        return _staff(row) if row is not None else None

    async def disabled_staff_ids(self) -> set[int]:
        rows = await self._pool.fetch("SELECT id FROM staff WHERE disabled = 1")
        return {int(row[0]) for row in rows}

    async def list_staff(self) -> list[StaffRecord]:
        # COLLATE "C": byte order, as SQLite's default BINARY collation sorts.
        rows = await self._pool.fetch(
            f'SELECT {_STAFF_COLUMNS} FROM staff ORDER BY username COLLATE "C"'  # noqa: S608 - constant column list
        )
        return [_staff(row) for row in rows]

    async def set_disabled(self, staff_id: int, disabled: bool) -> None:
        await self._pool.execute(
            "UPDATE staff SET disabled = $1 WHERE id = $2", int(disabled), staff_id)

    async def set_password_hash(self, staff_id: int, password_hash: str) -> None:
        await self._pool.execute(
            "UPDATE staff SET password_hash = $1 WHERE id = $2", password_hash, staff_id)

    async def set_languages(self, staff_id: int, languages: tuple[str, ...]) -> None:
        await self._pool.execute(
            "UPDATE staff SET languages = $1 WHERE id = $2", join_languages(languages), staff_id)

    async def reserve_login_attempt(
        self, staff_id: int, now: float, policy: LockoutPolicy
    ) -> LoginAttempt:
        # One statement decides: the lock test, the count and the new lock.
        # PostgreSQL re-checks the WHERE on the updated row when two
        # transactions race (READ COMMITTED), so two nodes cannot both pass the
        # test on the same count. The CASE is LockoutPolicy.lock_secs in SQL.
        async with self._pool.acquire() as con, con.transaction():
            row = await con.fetchrow(
                "UPDATE staff SET failed_logins = failed_logins + 1,"
                " locked_until = CASE WHEN failed_logins + 1 >= $3::integer"
                " THEN $2::float8 + LEAST($4::bigint << LEAST(failed_logins + 1 - $3::integer,"
                " $6::integer), $5::bigint) ELSE NULL END"
                " WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $2::float8)"
                " RETURNING failed_logins, locked_until",
                staff_id, now, policy.max_failures, policy.base_secs, policy.max_secs,
                MAX_LOCK_DOUBLINGS)
            if row is not None:
                return LoginAttempt(True, int(row[0]), row[1])
            # Refused (locked, or no such account): read the lock, only to
            # tell the caller how long to wait.
            row = await con.fetchrow(
                "SELECT failed_logins, locked_until FROM staff WHERE id = $1", staff_id)
        if row is None:
            return LoginAttempt(False, 0, None)
        return LoginAttempt(False, int(row[0]), row[1])

    async def reset_failures(self, staff_id: int) -> None:
        await self._pool.execute(
            "UPDATE staff SET failed_logins = 0, locked_until = NULL WHERE id = $1", staff_id)

    async def accept_totp_timecode(self, staff_id: int, timecode: int) -> bool:
        # One statement, so two concurrent logins with the same code cannot
        # both pass: the second re-reads the row and finds it at ``timecode``.
        status = await self._pool.execute(
            "UPDATE staff SET totp_last_timecode = $1, failed_logins = 0, locked_until = NULL"
            " WHERE id = $2 AND (totp_last_timecode IS NULL OR totp_last_timecode < $1)",
            timecode, staff_id)
        return _rows_changed(status) == 1

    # -- audit -------------------------------------------------------------

    async def append_audit(self, next_entry: NextEntry) -> AuditEntry:
        """Group commit, as on SQLite: entries appended while a commit is under
        way go into the next transaction together, and each caller waits
        until its own entry is committed."""
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
                async with self._pool.acquire() as con, con.transaction():
                    # Every node's appender takes this lock before it reads the
                    # head, so no two transactions ever chain onto one head.
                    await con.execute("SELECT pg_advisory_xact_lock($1)", AUDIT_LOCK)
                    row = await con.fetchrow(
                        f"SELECT {_AUDIT_COLUMNS} FROM audit ORDER BY seq DESC LIMIT 1"  # noqa: S608 - constant column list
                    )
                    last = _audit(row) if row is not None else None
                    for make, fut in batch:
                        try:
                            entry = make(last)
                        except Exception as exc:  # this entry only; the chain goes on
                            if not fut.done():
                                fut.set_exception(exc)
                            continue
                        done.append((fut, entry))
                        last = entry
                    if done:
                        await con.executemany(
                            "INSERT INTO audit (seq, at, actor, action, conversation, detail,"
                            " prev_hash, hash, chain) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
        # A server-side cursor (it needs a transaction): a long log is read in
        # pages, not loaded whole.
        async with self._pool.acquire() as con, con.transaction():
            async for row in con.cursor(
                f"SELECT {_AUDIT_COLUMNS} FROM audit ORDER BY seq"  # noqa: S608 - constant column list
            ):
                yield _audit(row)

    async def audit_head(self) -> AuditEntry | None:
        row = await self._pool.fetchrow(
            f"SELECT {_AUDIT_COLUMNS} FROM audit ORDER BY seq DESC LIMIT 1"  # noqa: S608 - constant column list
        )
        return _audit(row) if row is not None else None

    # -- statistics --------------------------------------------------------

    async def add_counts(self, month: str, counts: Mapping[tuple[str, str], int]) -> None:
        rows = [(month, dim, value, n) for (dim, value), n in counts.items() if n > 0]
        if not rows:
            return
        # One key order on every node: two nodes adding the same keys at once
        # then wait for each other's row locks instead of deadlocking.
        rows.sort()
        async with self._pool.acquire() as con, con.transaction():
            await con.executemany(
                "INSERT INTO stats (month, dimension, value, count) VALUES ($1, $2, $3, $4)"
                " ON CONFLICT (month, dimension, value) DO UPDATE"
                " SET count = stats.count + EXCLUDED.count",
                rows,
            )

    async def get_counts(self, month: str) -> dict[tuple[str, str], int]:
        rows = await self._pool.fetch(
            "SELECT dimension, value, count FROM stats WHERE month = $1", month)
        return {(row[0], row[1]): int(row[2]) for row in rows}

    async def counts_between(self, first: str, last: str
                             ) -> dict[tuple[str, str, str], int]:
        rows = await self._pool.fetch(
            "SELECT month, dimension, value, count FROM stats WHERE month BETWEEN $1 AND $2",
            first, last)
        return {(row[0], row[1], row[2]): int(row[3]) for row in rows}

    async def set_manual_count(self, month: str, kind: str, count: int) -> int | None:
        async with self._pool.acquire() as con, con.transaction():
            # A first entry inserts; a concurrent first entry waits on this
            # insert and then takes the update path below with its row lock,
            # so each correction reads the value it really replaces.
            inserted = await con.fetchval(
                "INSERT INTO stats_manual (month, kind, count) VALUES ($1, $2, $3)"
                " ON CONFLICT (month, kind) DO NOTHING RETURNING 1", month, kind, count)
            if inserted is not None:
                return None
            old = await con.fetchval(
                "SELECT count FROM stats_manual WHERE month = $1 AND kind = $2 FOR UPDATE",
                month, kind)
            await con.execute(
                "UPDATE stats_manual SET count = $3 WHERE month = $1 AND kind = $2",
                month, kind, count)
        return int(old)

    async def manual_counts_between(self, first: str, last: str
                                    ) -> dict[tuple[str, str], int]:
        rows = await self._pool.fetch(
            "SELECT month, kind, count FROM stats_manual WHERE month BETWEEN $1 AND $2",
            first, last)
        return {(row[0], row[1]): int(row[2]) for row in rows}

    # -- one-shot copy from another backend ----------------------------------

    async def load_copy(self, tables: Mapping[str, Sequence[tuple[Any, ...]]]) -> None:
        """Insert every row of ``tables`` (keyed and ordered as
        ``schema.COPY_COLUMNS``) as they are, in one transaction, into a
        database that holds none yet; ``ValueError`` if it does. The audit rows
        keep their seq, links and chain version byte for byte."""
        async with self._pool.acquire() as con, con.transaction():
            await con.execute("SELECT pg_advisory_xact_lock($1)", AUDIT_LOCK)
            for table in COPY_COLUMNS:
                if await con.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):  # noqa: S608 - constant table names
                    raise ValueError(f"the target already holds {table} rows: "
                                     "copy only into a freshly migrated database")
            for table, columns in COPY_COLUMNS.items():
                rows = tables.get(table, ())
                if not rows:
                    continue
                marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
                await con.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608 - constant names
                    rows)
            # New accounts continue after the copied ids.
            await con.execute(
                "SELECT setval(pg_get_serial_sequence('staff', 'id'),"
                " COALESCE((SELECT MAX(id) FROM staff), 0) + 1, false)")
