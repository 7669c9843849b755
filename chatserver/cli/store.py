"""``chatserver store migrate`` and ``chatserver store copy --from … --to …``.

``migrate`` opens the configured store (``database_url``, else the SQLite
file), which applies any migration it lacks, and prints the versions.

``copy`` moves a SQLite file's staff accounts, audit log, statistics and
return codes into a freshly migrated PostgreSQL database, in one transaction,
rows as they are (audit links byte for byte), then walks the copied chain
with the audit key and checks its head against the source's. It refuses a
target that already holds rows. The target's password comes from the
secrets (``CHAT_SECRET_DATABASE_PASSWORD``), never from the command line.
Exit codes: 0 copied and verified, 1 refused or broken, 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from pathlib import Path
from typing import TextIO

import asyncpg

from chatserver.domain import audit
from chatserver.settings import ConfigError, Settings, check_database_url, load_settings
from chatserver.storage import opened
from chatserver.storage.postgres import PostgresStore
from chatserver.storage.sqlite import SqliteStore

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _err(message: str, err: TextIO) -> int:
    print(f"chatserver store: error: {message}", file=err)
    return EXIT_FAILED


def migrate(settings: Settings, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    async def run() -> list[int]:
        async with opened(settings) as store:
            return await store.schema_versions()

    try:
        versions = asyncio.run(run())
    except (sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        return _err(f"cannot migrate: {exc}", err)
    backend = "postgresql" if settings.database_url else "sqlite"
    print(f"{backend}: schema at version {versions[-1]} "
          f"(applied: {', '.join(map(str, versions))})", file=out)
    return EXIT_OK


def copy(settings: Settings, source: str, target: str, out: TextIO = sys.stdout,
         err: TextIO = sys.stderr) -> int:
    if not source.startswith("sqlite:"):
        print("chatserver store: error: --from takes sqlite:PATH", file=err)
        return EXIT_USAGE
    if not target.startswith(("postgresql://", "postgres://")):
        print("chatserver store: error: --to takes postgresql://user@host:port/database",
              file=err)
        return EXIT_USAGE
    try:
        check_database_url(target)  # no password on the command line
    except ConfigError as exc:
        print(f"chatserver store: error: --to: {exc}", file=err)
        return EXIT_USAGE
    path = Path(source.removeprefix("sqlite:"))
    if not path.is_file():
        return _err(f"no database at {path}", err)
    secrets = settings.require_secrets()

    async def run() -> str:
        async with SqliteStore.open(path) as src:
            tables = await src.dump_copy()
            src_head = await src.audit_head()
        async with PostgresStore.open(target, secrets.database_password or None) as dst:
            await dst.load_copy(tables)
            result = await audit.verify(dst, secrets.audit_key,
                                        src_head.hash if src_head else None)
        if not result.ok:
            return (f"the copied audit log does not verify at seq {result.first_bad_seq}: "
                    f"{result.problem}")
        counts = ", ".join(f"{len(rows)} {table}" for table, rows in tables.items())
        print(f"copied {counts}; audit chain verified: {result.rows} entries", file=out)
        return ""

    try:
        problem = asyncio.run(run())
    except ValueError as exc:
        return _err(str(exc), err)
    except (sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        # Driver messages name the problem, not row contents (a failed insert
        # rolls the whole copy back).
        return _err(f"copy failed, nothing was written: {exc}", err)
    return _err(problem, err) if problem else EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``store …`` to the main parser; each sets ``func(args) -> exit code``."""
    parser = subparsers.add_parser("store", help="the durable store (SQLite or PostgreSQL)")
    sub = parser.add_subparsers(dest="store_command", required=True)
    m = sub.add_parser("migrate", help="apply migrations to the configured store")
    m.set_defaults(func=lambda args: migrate(load_settings(args.config)))
    c = sub.add_parser("copy", help="copy a SQLite file into an empty PostgreSQL database")
    c.add_argument("--from", dest="source", required=True, metavar="sqlite:PATH")
    c.add_argument("--to", dest="target", required=True,
                   metavar="postgresql://user@host:port/database")
    c.set_defaults(func=lambda args: copy(load_settings(args.config), args.source,
                                          args.target))
