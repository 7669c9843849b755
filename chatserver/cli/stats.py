"""``chatserver stats export --from YYYY-MM --to YYYY-MM [--format csv|json]``.

Prints the funders' report for a range of months to stdout, through the same
``stats_report.build_report`` as the operator page and the staff API, so
small counts are suppressed exactly as there (docs/statistics.md). CSV is the
long format ``period,dimension,value,count``. Each export is audited
(``stats_exported``, actor ``cli``), like a CSV download from the page. Exit codes: 0 printed, 1 the
database could not be read, 2 usage (a bad range).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from typing import TextIO

import asyncpg

from chatserver.domain.audit import ACTOR_CLI, AuditLog
from chatserver.domain.clock import SystemClock
from chatserver.domain.stats_report import Report, build_report
from chatserver.errors import BadRange
from chatserver.settings import Settings, load_settings
from chatserver.storage import opened

EXIT_OK = 0
EXIT_UNREADABLE = 1
EXIT_USAGE = 2


def export(settings: Settings, first: str, last: str, fmt: str = "csv",
           out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    async def run() -> Report:
        async with opened(settings) as store:
            report = await build_report(store, first, last, settings.stats_suppress_below,
                                        settings.service.get("profile", {}))
            audit = AuditLog(store, SystemClock(), settings.require_secrets().audit_key)
            await audit.record(ACTOR_CLI, "stats_exported", month=report.first,
                               count=len(report.months), format=fmt)
            return report

    try:
        report = asyncio.run(run())
    except BadRange:
        print("chatserver stats: error: --from and --to take YYYY-MM, --from not after "
              "--to, at most 120 months", file=err)
        return EXIT_USAGE
    except (sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        print(f"chatserver stats: error: cannot read the statistics: {exc}", file=err)
        return EXIT_UNREADABLE
    if fmt == "json":
        out.write(json.dumps(report.as_json(), ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(report.as_csv())
    return EXIT_OK


def _export_cmd(args: argparse.Namespace) -> int:
    return export(load_settings(getattr(args, "config", None)), args.first, args.last,
                  args.format)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``stats …`` to the main parser; each sets ``func(args) -> exit code``."""
    parser = subparsers.add_parser("stats", help="the follow-up statistics")
    sub = parser.add_subparsers(dest="stats_command", required=True)
    p = sub.add_parser("export", help="print a range of months, small counts suppressed "
                                      "(exit 0 printed, 1 database unreadable, 2 usage)")
    p.add_argument("--from", dest="first", required=True, metavar="YYYY-MM")
    p.add_argument("--to", dest="last", required=True, metavar="YYYY-MM")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.set_defaults(func=_export_cmd)
