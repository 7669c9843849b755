"""Durable state: staff accounts, the audit log, statistics and return codes.

Two backends implement the protocols of ``base.py`` and pass one contract
suite (tests/unit/test_store_contract.py):

- ``sqlite.SqliteStore``: the embedded default, one file under ``data_dir``;
  no database server. One node.
- ``postgres.PostgresStore``: PostgreSQL through asyncpg, for several server
  processes on several machines sharing one database.

``open_store(settings)`` is the only place that chooses between them: the
server and the CLI call it. Migrations for both come from one ordered list
(``schema.py``, decision 0009).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatserver.settings import Settings
    from chatserver.storage.base import Store


async def open_store(settings: Settings) -> Store:
    """Open (and migrate) the store ``settings.database_url`` names: SQLite at
    ``settings.database_path`` when it is empty, else PostgreSQL."""
    return await open_url(settings.database_url or f"sqlite:{settings.database_path}",
                          settings.require_secrets().database_password)


@asynccontextmanager
async def opened(settings: Settings) -> AsyncIterator[Store]:
    """``async with opened(settings) as store``: ``open_store``, closed after."""
    store = await open_store(settings)
    try:
        yield store
    finally:
        await store.close()


async def open_url(url: str, password: str = "") -> Store:
    """``sqlite:PATH`` or ``postgresql://…``: for ``chatserver store copy``,
    which names two stores at once."""
    if url.startswith("sqlite:"):
        from chatserver.storage.sqlite import SqliteStore

        return await SqliteStore.open(url.removeprefix("sqlite:"))
    if url.startswith(("postgresql://", "postgres://")):
        from chatserver.storage.postgres import PostgresStore

        return await PostgresStore.open(url, password or None)
    raise ValueError("a store is sqlite:PATH or postgresql://user@host:port/database")
