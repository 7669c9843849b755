"""The partner directory on PostgreSQL (``PartnerStore``), mixed into
``PostgresStore``. Every write is one transaction that first raises the
directory version (``UPDATE … RETURNING``): the row lock on
``partner_directory`` puts writers from several nodes in one order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import asyncpg

from chatserver.errors import PartnerExists, UnknownPartner
from chatserver.storage.partners import PARTNER_COLUMNS, PartnerRecord

_COLUMNS = ", ".join(PARTNER_COLUMNS)
_COUNT = len(PARTNER_COLUMNS)
_MARKS = ", ".join(f"${i}" for i in range(1, _COUNT + 1))
_SETS = ", ".join(f"{c} = ${i}" for i, c in enumerate(PARTNER_COLUMNS[1:], start=2))
_UPSERT = ", ".join(f"{c} = excluded.{c}" for c in PARTNER_COLUMNS[1:])
_BUMP = ("INSERT INTO partner_directory (id, version) VALUES (1, 1) ON CONFLICT (id)"
         " DO UPDATE SET version = partner_directory.version + 1 RETURNING version")


class _Stale(Exception):
    """The directory moved past ``if_version``: roll the transaction back."""


class PostgresPartners:
    if TYPE_CHECKING:
        _pool: asyncpg.Pool

    async def partner_version(self) -> int:
        value = await self._pool.fetchval("SELECT version FROM partner_directory WHERE id = 1")
        return int(value or 0)

    async def list_partners(self) -> tuple[int, list[PartnerRecord]]:
        # REPEATABLE READ: the version and the rows come from one snapshot.
        async with self._pool.acquire() as con, con.transaction(isolation="repeatable_read",
                                                                 readonly=True):
            version = await con.fetchval("SELECT version FROM partner_directory WHERE id = 1")
            rows = await con.fetch(
                f"SELECT {_COLUMNS}, revision FROM partners ORDER BY code")  # noqa: S608
        return int(version or 0), [PartnerRecord.from_row(r) for r in rows]

    async def add_partner(self, record: PartnerRecord) -> int:
        try:
            async with self._pool.acquire() as con, con.transaction():
                version = int(await con.fetchval(_BUMP))
                await con.execute(
                    f"INSERT INTO partners ({_COLUMNS}, revision)"  # noqa: S608
                    f" VALUES ({_MARKS}, ${_COUNT + 1})", *record.row(), version)
        except asyncpg.UniqueViolationError:
            raise PartnerExists() from None
        return version

    async def update_partner(self, record: PartnerRecord) -> int:
        async with self._pool.acquire() as con, con.transaction():
            version = int(await con.fetchval(_BUMP))
            status = await con.execute(
                f"UPDATE partners SET {_SETS}, revision = ${_COUNT + 1}"  # noqa: S608
                " WHERE code = $1", *record.row(), version)
            if status != "UPDATE 1":
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
        async with self._pool.acquire() as con, con.transaction():
            # The upsert's row lock orders writers from every node: of several
            # nodes seeding at once, the first sees if_version + 1, the others
            # a later version, and they roll back.
            version = int(await con.fetchval(_BUMP))
            if if_version is not None and version != if_version + 1:
                raise _Stale()
            await con.executemany(
                f"INSERT INTO partners ({_COLUMNS}, revision)"  # noqa: S608
                f" VALUES ({_MARKS}, ${_COUNT + 1})"
                f" ON CONFLICT (code) DO UPDATE SET {_UPSERT}, revision = excluded.revision",
                [(*r.row(), version) for r in records])
            await con.execute(
                "UPDATE partners SET retired = 1, revision = $1"
                " WHERE retired = 0 AND NOT (code = ANY($2::text[]))",
                version, [r.code for r in records])
        return version
