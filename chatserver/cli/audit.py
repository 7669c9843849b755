"""``chatserver audit verify [--print-head] [--expect-head HASH]``,
``chatserver audit seal [--expect-head HASH]`` and ``chatserver audit prune``.

Walks the chain with the audit key (``secrets.audit_key``) and says, in one
line, whether it holds and where it breaks. Exit codes:

- 0: intact. "audit log OK: N entries", then one line per part: the unkeyed
  entries from before the audit key existed (if any), and the keyed ones.
- 1: broken. One line: "audit log BROKEN at seq N: <what> (K entries before
  it are intact)".
- 2: usage or configuration error (a bad argument, a missing secret).
- 3: the database cannot be read (missing, not a database, locked).

Removing entries from the end of the log leaves a valid, shorter chain: note
the head (``--print-head``) somewhere else from time to time and pass it back
with ``--expect-head``. Design: docs/design/audit.md.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sqlite3
import sys
from typing import TextIO

import asyncpg

from chatserver.domain import audit, audit_retention
from chatserver.domain.clock import SystemClock
from chatserver.settings import Settings, load_settings
from chatserver.storage import opened
from chatserver.storage.base import AuditEntry

_HASH = re.compile(r"^[0-9a-f]{64}$")

EXIT_OK = 0
EXIT_BROKEN = 1
EXIT_USAGE = 2  # also what ``chatserver`` returns for a configuration error
EXIT_UNREADABLE = 3


def verify(
    settings: Settings,
    *,
    print_head: bool = False,
    expect_head: str | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    key = settings.require_secrets().audit_key
    # The database_url has no password in it (settings refuses one).
    where = settings.database_url or str(settings.database_path)
    if not settings.database_url and not settings.database_path.is_file():
        # Opening would create an empty database, which would "verify".
        print(f"chatserver audit: error: no database at {where}", file=err)
        return EXIT_UNREADABLE

    async def run() -> audit.VerifyResult:
        async with opened(settings) as store:
            return await audit.verify(store, key, expect_head)

    try:
        result = asyncio.run(run())
    except (sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        # The drivers' messages name the problem ("file is not a database",
        # "database is locked", "password authentication failed"), never row
        # contents: verify only reads.
        print(f"chatserver audit: error: cannot read {where}: {exc}", file=err)
        return EXIT_UNREADABLE
    if not result.ok:
        print(f"audit log BROKEN at seq {result.first_bad_seq}: {result.problem} "
              f"({result.rows} entries before it are intact)", file=out)
        return EXIT_BROKEN
    print(f"audit log OK: {result.rows} entries", file=out)
    first = result.first_seq
    if result.pruned:
        print(f"  pruned: entries 1-{result.pruned} (removed by retention behind a "
              "signed checkpoint)", file=out)
    if result.unkeyed:
        print(f"  unkeyed: entries {first}-{first + result.unkeyed - 1} (written before the "
              f"audit key; sealed by entry {first + result.unkeyed})", file=out)
    if result.rows > result.unkeyed:
        print(f"  keyed: entries {first + result.unkeyed}-{first + result.rows - 1}", file=out)
    if print_head:
        print(f"head: seq={first + result.rows - 1} hash={result.head_hash}", file=out)
    return EXIT_OK


def prune(settings: Settings, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Remove entries older than ``audit_retention_days`` behind a signed
    checkpoint, as the server does daily. Exit 0 pruned or nothing to prune,
    1 refused (the log is not sealed), 2 usage or configuration, 3 database
    unreadable."""
    key = settings.require_secrets().audit_key
    where = settings.database_url or str(settings.database_path)
    if not settings.database_url and not settings.database_path.is_file():
        print(f"chatserver audit: error: no database at {where}", file=err)
        return EXIT_UNREADABLE

    async def run() -> audit_retention.Pruned:
        clock = SystemClock()
        async with opened(settings) as store:
            log = audit.AuditLog(store, clock, key)
            return await audit_retention.prune(store, log, clock, key,
                                               settings.audit_retention_days, audit.ACTOR_CLI)

    try:
        result = asyncio.run(run())
    except audit.AuditNotSealed as exc:
        print(f"chatserver audit: refused: {exc}", file=out)
        return EXIT_BROKEN
    except (sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        print(f"chatserver audit: error: cannot read {where}: {exc}", file=err)
        return EXIT_UNREADABLE
    if not result.removed:
        print(f"audit log: nothing to prune (no entry before {result.cutoff} but the last)",
              file=out)
    else:
        print(f"audit log pruned: {result.removed} entries before {result.cutoff} removed, "
              f"through seq {result.through} (checkpoint recorded)", file=out)
    return EXIT_OK


def seal(settings: Settings, *, expect_head: str | None = None,
         out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Seal a log from before the audit key (docs/operations.md, "Upgrading").
    Exit 0 sealed or nothing to seal, 1 refused (the head is not the one
    noted), 2 usage or configuration, 3 database unreadable."""
    key = settings.require_secrets().audit_key
    where = settings.database_url or str(settings.database_path)
    if not settings.database_url and not settings.database_path.is_file():
        print(f"chatserver audit: error: no database at {where}", file=err)
        return EXIT_UNREADABLE

    async def run() -> AuditEntry | None:
        async with opened(settings) as store:
            return await audit.AuditLog(store, SystemClock(), key).seal(expect_head)

    try:
        marker = asyncio.run(run())
    except ValueError as exc:
        print(f"chatserver audit: refused: {exc}", file=out)
        return EXIT_BROKEN
    except (sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        print(f"chatserver audit: error: cannot read {where}: {exc}", file=err)
        return EXIT_UNREADABLE
    if marker is None:
        print("audit log: nothing to seal (it does not end in unkeyed entries)", file=out)
    else:
        print(f"audit log sealed: entries 1-{marker.seq - 1} by entry {marker.seq}", file=out)
    return EXIT_OK


def _head_arg(value: str | None) -> bool:
    if value is not None and not _HASH.match(value):
        print("chatserver audit: error: --expect-head takes a 64-character hex hash",
              file=sys.stderr)
        return False
    return True


def _seal_cmd(args: argparse.Namespace) -> int:
    if not _head_arg(args.expect_head):
        return EXIT_USAGE
    return seal(load_settings(getattr(args, "config", None)), expect_head=args.expect_head)


def _prune_cmd(args: argparse.Namespace) -> int:
    return prune(load_settings(getattr(args, "config", None)))


def _verify_cmd(args: argparse.Namespace) -> int:
    if not _head_arg(args.expect_head):
        return EXIT_USAGE
    return verify(load_settings(getattr(args, "config", None)),
                  print_head=args.print_head, expect_head=args.expect_head)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``audit …`` to the main parser; each sets ``func(args) -> exit code``."""
    parser = subparsers.add_parser("audit", help="the audit log")
    sub = parser.add_subparsers(dest="audit_command", required=True)
    p = sub.add_parser("verify", help="check the keyed chain (exit 0 intact, 1 broken, "
                                      "2 usage or configuration, 3 database unreadable)")
    p.add_argument("--print-head", action="store_true",
                   help="also print the last entry's seq and hash, to note elsewhere")
    p.add_argument("--expect-head", metavar="HASH",
                   help="fail unless this previously noted head hash is in the log")
    p.set_defaults(func=_verify_cmd)
    p = sub.add_parser("seal", help="once, after an upgrade from before the audit key: "
                                    "key the log's unkeyed entries (exit 0 sealed or "
                                    "nothing to seal, 1 refused)")
    p.add_argument("--expect-head", metavar="HASH",
                   help="seal only if the log ends in this head, noted before the upgrade")
    p.set_defaults(func=_seal_cmd)
    p = sub.add_parser("prune", help="remove entries older than audit_retention_days behind "
                                     "a signed checkpoint, as the server does daily (exit 0 "
                                     "pruned or nothing to prune, 1 refused)")
    p.set_defaults(func=_prune_cmd)
