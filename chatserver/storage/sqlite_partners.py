"""The partner directory on SQLite (``PartnerStore``), mixed into
``SqliteStore``: every write is one ``_write()`` transaction that also raises
the directory version."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from chatserver.errors import PartnerExists, UnknownPartner
from chatserver.storage.partners import PARTNER_COLUMNS, PartnerRecord

if TYPE_CHECKING:
    import aiosqlite

_COLUMNS = ", ".join(PARTNER_COLUMNS)
BUMP = ("INSERT INTO partner_directory (id, version) VALUES (1, 1) ON CONFLICT (id)"
        " DO UPDATE SET version = partner_directory.version + 1 RETURNING version")
_MARKS = ", ".join("?" for _ in PARTNER_COLUMNS)
_SETS = ", ".join(f"{c} = ?" for c in PARTNER_COLUMNS[1:])


async def _bump(db: aiosqlite.Connection) -> int:
    cur = await db.execute(BUMP)
    row = await cur.fetchone()
    await cur.close()
    if row is None:  # an upsert with RETURNING always yields its row
        raise RuntimeError("the directory version was not written")
    return int(row[0])


class _Stale(Exception):
    """The directory moved past ``if_version``: roll the transaction back."""


class SqlitePartners:
    if TYPE_CHECKING:
        _db: aiosqlite.Connection

        def _write(self) -> AbstractAsyncContextManager[aiosqlite.Connection]: ...

    async def partner_version(self) -> int:
        rows = await self._db.execute_fetchall("SELECT version FROM partner_directory")
        return int(next(iter(rows))[0]) if rows else 0

    async def list_partners(self) -> tuple[int, list[PartnerRecord]]:
        # Read under the write lock: the version and the rows belong together.
        async with self._write() as db:
            version_rows = await db.execute_fetchall("SELECT version FROM partner_directory")
            rows = await db.execute_fetchall(
                f"SELECT {_COLUMNS}, revision FROM partners ORDER BY code")  # noqa: S608 - constant columns
        version = int(next(iter(version_rows))[0]) if version_rows else 0
        return version, [PartnerRecord.from_row(r) for r in rows]

    async def add_partner(self, record: PartnerRecord) -> int:
        try:
            async with self._write() as db:
                version = await _bump(db)
                await db.execute(
                    f"INSERT INTO partners ({_COLUMNS}, revision) VALUES ({_MARKS}, ?)",  # noqa: S608
                    (*record.row(), version))
        except sqlite3.IntegrityError as exc:
            if "partners.code" in str(exc):
                raise PartnerExists() from None
            raise
        return version

    async def update_partner(self, record: PartnerRecord) -> int:
        async with self._write() as db:
            version = await _bump(db)
            cur = await db.execute(
                f"UPDATE partners SET {_SETS}, revision = ? WHERE code = ?",  # noqa: S608
                (*record.row()[1:], version, record.code))
            if cur.rowcount != 1:
                raise UnknownPartner()  # rolls the version back with the transaction
        return version

    async def replace_partners(self, records: Sequence[PartnerRecord],
                               if_version: int | None = None) -> int | None:
        try:
            return await self._replace_partners(records, if_version)
        except _Stale:  # the transaction was rolled back: nothing changed
            return None

    async def _replace_partners(self, records: Sequence[PartnerRecord],
                                if_version: int | None) -> int:
        async with self._write() as db:
            version = await _bump(db)
            if if_version is not None and version != if_version + 1:
                raise _Stale()
            await _replace(db, records, version)
        return version


async def _replace(db: aiosqlite.Connection, records: Sequence[PartnerRecord],
                   version: int) -> None:
    named = [r.code for r in records]
    for r in records:
        await db.execute(
            f"INSERT INTO partners ({_COLUMNS}, revision) VALUES ({_MARKS}, ?)"  # noqa: S608
            f" ON CONFLICT (code) DO UPDATE SET {_UPSERT}, revision = excluded.revision",
            (*r.row(), version))
    marks = ", ".join("?" for _ in named) or "''"
    await db.execute(
        f"UPDATE partners SET retired = 1, revision = ? WHERE retired = 0"  # noqa: S608
        f" AND code NOT IN ({marks})", (version, *named))


_UPSERT = ", ".join(f"{c} = excluded.{c}" for c in PARTNER_COLUMNS[1:])
