"""``chatserver partners export | import``: the whole partner directory as a
TOML or CSV file, for the annual check with the municipalities.

``import`` checks every entry of the file before it changes anything; then
the directory becomes the file (entries the file does not name are retired,
never deleted), in one transaction, audited with actor "cli". A running
server picks the new version up within seconds (docs/design/partners.md).
Format and upkeep: docs/operations.md, "The partner directory".
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from pathlib import Path
from typing import TextIO

import asyncpg

from chatserver.domain.audit import ACTOR_CLI, AuditLog
from chatserver.domain.clock import SystemClock
from chatserver.domain.partner_bank import PartnerBank
from chatserver.domain.partner_files import FORMATS, export, parse
from chatserver.settings import ConfigError, Settings, load_settings
from chatserver.storage import opened


def _err(message: str) -> int:
    print(f"chatserver partners: error: {message}", file=sys.stderr)
    return 1


# What a store can raise when the database cannot be read or written: the
# drivers' messages name the problem ("file is not a database", "connection
# refused"), never row contents.
_STORE_ERRORS = (sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


def export_directory(settings: Settings, fmt: str, out: TextIO = sys.stdout) -> int:
    async def run() -> str:
        async with opened(settings) as store:
            audit = AuditLog(store, SystemClock(), settings.require_secrets().audit_key)
            bank = PartnerBank(store, audit, SystemClock())
            await bank.open()
            entries = bank.directory.everything()
            text = export(entries, fmt)
            # Staff notes leave the system in this file: audited, metadata only.
            await audit.record(ACTOR_CLI, "partners_exported", format=fmt, count=len(entries))
            return text

    try:
        text = asyncio.run(run())
    except _STORE_ERRORS as exc:
        return _err(f"cannot read the partner directory: {exc}")
    out.write(text)
    return 0


def import_directory(settings: Settings, path: Path, fmt: str | None,
                     out: TextIO = sys.stdout) -> int:
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        return _err(f"cannot tell the format of {path.name}: use --format "
                    f"{' or '.join(FORMATS)}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _err(f"cannot read {path}: {exc}")
    try:
        partners = parse(text, fmt, str(path))
    except ConfigError as exc:
        return _err(f"{exc} (nothing was imported)")

    async def run() -> tuple[int, int]:
        async with opened(settings) as store:
            bank = PartnerBank(store, AuditLog(store, SystemClock(),
                                               settings.require_secrets().audit_key),
                               SystemClock())
            await bank.open()
            return await bank.replace_all(ACTOR_CLI, partners)

    try:
        written, retired = asyncio.run(run())
    except _STORE_ERRORS as exc:
        return _err(f"cannot write the partner directory: {exc} (nothing was imported)")
    print(f"imported {written} partner entries from {path.name}; "
          f"{retired} entries not in the file were retired", file=out)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``partners …`` to the main parser."""
    partners = subparsers.add_parser("partners", help="export or import the partner directory")
    sub = partners.add_subparsers(dest="partners_command", required=True)

    p = sub.add_parser("export", help="print the whole directory (retired entries too)")
    p.add_argument("--format", choices=FORMATS, default="toml")
    p.set_defaults(func=lambda a: export_directory(load_settings(a.config), a.format))

    p = sub.add_parser("import", help="replace the directory with a file, checked first")
    p.add_argument("file", type=Path)
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="default: from the file name's ending")
    p.set_defaults(func=lambda a: import_directory(load_settings(a.config), a.file, a.format))
