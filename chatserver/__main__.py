"""Command line: ``chatserver serve | staff … | audit … | store … | stats …``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from chatserver.domain.audit import AuditNotSealed
from chatserver.settings import ConfigError, load_settings


def build_parser() -> argparse.ArgumentParser:
    from chatserver.cli import audit as audit_cli
    from chatserver.cli import partners as partners_cli
    from chatserver.cli import staff as staff_cli
    from chatserver.cli import stats as stats_cli
    from chatserver.cli import store as store_cli

    parser = argparse.ArgumentParser(prog="chatserver", description=__doc__)
    parser.add_argument("--config", help="a TOML file over config/default.toml "
                        "(default: $CHAT_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server (embedded default: memory + SQLite)")
    serve.set_defaults(func=_serve)
    staff_cli.register(sub)
    audit_cli.register(sub)
    store_cli.register(sub)
    partners_cli.register(sub)
    stats_cli.register(sub)
    return parser


def _serve(args: argparse.Namespace) -> int:
    from chatserver.app import run
    from chatserver.startup import CannotStart

    try:
        run(load_settings(args.config))
    except CannotStart as exc:
        print(f"chatserver: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"chatserver: configuration error: {exc}", file=sys.stderr)
        return 2
    except AuditNotSealed as exc:  # a staff command on a log that is not sealed
        print(f"chatserver: error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
