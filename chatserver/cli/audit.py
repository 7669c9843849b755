"""``chatserver audit verify [--print-head] [--expect-head HASH]``.

Exit 0 and "audit log OK: N entries" when the chain is intact; exit 1 naming
the first bad entry otherwise. Removing entries from the end of the log leaves
a valid, shorter chain: note the head (``--print-head``) somewhere else from
time to time and pass it back with ``--expect-head``. Design: docs/design/audit.md.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from typing import TextIO

from chatserver.domain import audit
from chatserver.settings import Settings, load_settings
from chatserver.storage.sqlite import SqliteStore

_HASH = re.compile(r"^[0-9a-f]{64}$")


def verify(
    settings: Settings,
    *,
    print_head: bool = False,
    expect_head: str | None = None,
    out: TextIO = sys.stdout,
) -> int:
    async def run() -> audit.VerifyResult:
        async with SqliteStore.open(settings.database_path) as store:
            return await audit.verify(store, expect_head)

    result = asyncio.run(run())
    if not result.ok:
        print(f"audit log BROKEN at seq {result.first_bad_seq}: {result.problem} "
              f"({result.rows} entries before it are intact)", file=out)
        return 1
    print(f"audit log OK: {result.rows} entries", file=out)
    if print_head:
        print(f"head: seq={result.rows} hash={result.head_hash}", file=out)
    return 0


def _verify_cmd(args: argparse.Namespace) -> int:
    if args.expect_head is not None and not _HASH.match(args.expect_head):
        print("chatserver audit: error: --expect-head takes a 64-character hex hash",
              file=sys.stderr)
        return 2
    return verify(load_settings(getattr(args, "config", None)),
                  print_head=args.print_head, expect_head=args.expect_head)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``audit …`` to the main parser; each sets ``func(args) -> exit code``."""
    parser = subparsers.add_parser("audit", help="the audit log")
    sub = parser.add_subparsers(dest="audit_command", required=True)
    p = sub.add_parser("verify", help="check the hash chain")
    p.add_argument("--print-head", action="store_true",
                   help="also print the last entry's seq and hash, to note elsewhere")
    p.add_argument("--expect-head", metavar="HASH",
                   help="fail unless this previously noted head hash is in the log")
    p.set_defaults(func=_verify_cmd)
