"""``chatserver staff add | list | disable | enable | unlock | languages | export``.

Account changes are written to the audit log with actor "cli". The TOTP
provisioning URI and QR code are printed once, at ``add``, for the new staff
member to scan; they are not stored anywhere in readable form. Run this where
stdout is not captured into logs. Design: docs/design/staff-auth.md.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import hmac
import sys
from collections.abc import Callable
from typing import TextIO

import segno

from chatserver.crypto import totp
from chatserver.domain import auth
from chatserver.domain.audit import ACTOR_CLI, AuditLog
from chatserver.domain.clock import SystemClock
from chatserver.errors import AccountExists, UnknownAccount
from chatserver.settings import Settings, load_settings
from chatserver.storage import opened
from chatserver.storage.base import STAFF_ROLES, Store

DEFAULT_ISSUER = "chatserver"  # the label authenticator apps show next to the code


def _audit(store: Store, settings: Settings) -> AuditLog:
    return AuditLog(store, SystemClock(), settings.require_secrets().audit_key)


def _err(message: str) -> int:
    print(f"chatserver staff: error: {message}", file=sys.stderr)
    return 1


def read_password(from_stdin: bool, stdin: TextIO = sys.stdin,
                  check: Callable[[str], None] = auth.check_password) -> str:
    """One line from stdin (without its line ending), or two matching getpass
    prompts. ``check`` (ValueError if unfit) runs on the first entry, so a
    password that is too short is refused before it is typed a second time."""
    if from_stdin:
        password = stdin.readline().rstrip("\r\n")
        check(password)
        return password
    first = getpass.getpass(f"Password (at least {auth.MIN_PASSWORD_CHARS} characters): ")
    check(first)
    second = getpass.getpass("Password again: ")
    if not hmac.compare_digest(first.encode(), second.encode()):
        raise ValueError("the two passwords differ")
    return first


def add(
    settings: Settings,
    username: str,
    password: str,
    *,
    role: str,
    alias: str,
    capacity: int | None = None,
    issuer: str = DEFAULT_ISSUER,
    out: TextIO = sys.stdout,
) -> int:
    cap = settings.default_capacity if capacity is None else capacity

    async def run() -> auth.NewAccount:
        async with opened(settings) as store:
            return await auth.add_account(
                username, password, role=role, alias=alias, capacity=cap, actor=ACTOR_CLI,
                store=store, audit=_audit(store, settings), clock=SystemClock(),
                settings=settings, guard=auth.LoginGuard(settings.password_profile),
            )

    try:
        created = asyncio.run(run())
    except ValueError as exc:
        return _err(str(exc))
    except AccountExists:
        return _err(f"account_exists: the username {username!r} is taken")
    uri = totp.provisioning_uri(created.totp_seed, created.staff.username, issuer)
    s = created.staff
    print(f"added {s.username}: role {s.role}, alias {s.alias!r}, capacity {s.capacity}", file=out)
    print("Scan this in the staff member's authenticator app. It is shown only once:", file=out)
    segno.make(uri).terminal(out=out, compact=True)
    print(uri, file=out)
    return 0


def list_accounts(settings: Settings, out: TextIO = sys.stdout) -> int:
    async def run() -> list[tuple[str, ...]]:
        async with opened(settings) as store:
            return [
                (s.username, s.role, s.alias, str(s.capacity), "yes" if s.disabled else "no",
                 ",".join(s.languages) or "-")
                for s in await store.list_staff()
            ]

    rows = [("USERNAME", "ROLE", "ALIAS", "CAPACITY", "DISABLED", "LANGUAGES"),
            *asyncio.run(run())]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip(), file=out)
    return 0


def set_disabled(
    settings: Settings, username: str, disabled: bool, out: TextIO = sys.stdout
) -> int:
    async def run() -> None:
        async with opened(settings) as store:
            await auth.set_account_disabled(
                username, disabled, actor=ACTOR_CLI, store=store,
                audit=_audit(store, settings),
            )

    try:
        asyncio.run(run())
    except UnknownAccount:
        return _err(f"unknown_account: no account {username!r}")
    print(f"{'disabled' if disabled else 'enabled'} {username}", file=out)
    if disabled:
        print("A running server ends the account's sessions at its next check "
              "(at the latest after session_idle_secs).", file=out)
    return 0


def unlock(settings: Settings, username: str, out: TextIO = sys.stdout) -> int:
    async def run() -> None:
        async with opened(settings) as store:
            await auth.unlock_account(
                username, actor=ACTOR_CLI, store=store, audit=_audit(store, settings)
            )

    try:
        asyncio.run(run())
    except UnknownAccount:
        return _err(f"unknown_account: no account {username!r}")
    print(f"unlocked {username}", file=out)
    return 0


def set_languages(settings: Settings, username: str, codes: str,
                  out: TextIO = sys.stdout) -> int:
    """``codes``: comma-separated codes from the chat-language list; "" clears."""
    allowed = tuple(settings.service.get("profile", {}).get("languages", ()))
    try:
        languages = auth.parse_languages(codes, allowed)
    except ValueError as exc:
        return _err(str(exc))

    async def run() -> None:
        async with opened(settings) as store:
            await auth.set_account_languages(
                username, languages, actor=ACTOR_CLI, store=store, audit=_audit(store, settings)
            )

    try:
        asyncio.run(run())
    except UnknownAccount:
        return _err(f"unknown_account: no account {username!r}")
    print(f"{username} speaks {', '.join(languages) or 'no language set'}", file=out)
    return 0


# -- argparse wiring ---------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None))


def _add_cmd(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        auth.check_account_fields(
            args.username, args.role, args.alias,
            settings.default_capacity if args.capacity is None else args.capacity,
        )
        password = read_password(args.password_stdin)
    except ValueError as exc:
        return _err(str(exc))
    return add(settings, args.username, password, role=args.role, alias=args.alias,
               capacity=args.capacity, issuer=args.issuer)


def _list_cmd(args: argparse.Namespace) -> int:
    return list_accounts(_settings(args))


def _disable_cmd(args: argparse.Namespace) -> int:
    return set_disabled(_settings(args), args.username, True)


def _enable_cmd(args: argparse.Namespace) -> int:
    return set_disabled(_settings(args), args.username, False)


def _unlock_cmd(args: argparse.Namespace) -> int:
    return unlock(_settings(args), args.username)


def _languages_cmd(args: argparse.Namespace) -> int:
    return set_languages(_settings(args), args.username, args.codes)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``staff …`` to the main parser; each sets ``func(args) -> exit code``."""
    staff = subparsers.add_parser("staff", help="manage staff accounts")
    sub = staff.add_subparsers(dest="staff_command", required=True)

    p = sub.add_parser("add", help="add an account and print its TOTP QR code (once)")
    p.add_argument("username")
    p.add_argument("--role", required=True, choices=STAFF_ROLES)
    p.add_argument("--alias", required=True, help="the name youths see (not the real name)")
    p.add_argument("--capacity", type=int, default=None,
                   help="concurrent conversations (default: default_capacity)")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of stdin instead of prompting")
    p.add_argument("--issuer", default=DEFAULT_ISSUER,
                   help="the name the authenticator app shows (default: %(default)s)")
    p.set_defaults(func=_add_cmd)

    p = sub.add_parser("list", help="list accounts (never hashes or seeds)")
    p.set_defaults(func=_list_cmd)

    for name, func, text in (
        ("disable", _disable_cmd, "refuse logins for an account"),
        ("enable", _enable_cmd, "allow logins again"),
        ("unlock", _unlock_cmd, "clear failed logins and any lockout"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("username")
        p.set_defaults(func=func)

    p = sub.add_parser("languages",
                       help="set the languages an account speaks (take next prefers them)")
    p.add_argument("username")
    p.add_argument("codes", help='comma-separated codes from service.profile.languages, '
                                 'e.g. sv,en,ar; "" for none')
    p.set_defaults(func=_languages_cmd)

    from chatserver.cli import staff_export  # a module of its own: data subject requests
    staff_export.register(sub)
