"""``chatserver staff export <username>``: everything the system holds about
one staff member, as JSON on stdout, for a data subject's request for access
(GDPR art. 15) or portability (art. 20): the account's fields (never the
password hash or the TOTP seed: only that they exist) and every audit entry
the member made or that names them (``target``). Metadata only: the log holds
no conversation content. The export is itself audited (``staff_exported``).
Erasure and the append-only chain: docs/privacy.md, "Requests from staff"."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, TextIO

from chatserver.domain.audit import ACTOR_CLI, AuditLog, utc_iso
from chatserver.domain.clock import SystemClock
from chatserver.settings import Settings, load_settings
from chatserver.storage import opened


def export(settings: Settings, username: str, out: TextIO = sys.stdout,
           err: TextIO = sys.stderr) -> int:
    """Exit 0 exported, 1 no such account (nothing written, nothing audited)."""

    async def run() -> dict[str, Any] | None:
        clock = SystemClock()
        async with opened(settings) as store:
            staff = await store.get_by_username(username)
            if staff is None:
                return None
            entries = []
            async for e in store.iter_audit():
                detail = json.loads(e.detail) if e.detail else {}
                if e.actor == username or detail.get("target") == username:
                    entries.append({"seq": e.seq, "at": e.at, "actor": e.actor,
                                    "action": e.action, "conversation": e.conversation,
                                    "detail": detail})
            await AuditLog(store, clock, settings.require_secrets().audit_key).record(
                ACTOR_CLI, "staff_exported", target=username, count=len(entries))
            return {
                "exported_at": utc_iso(clock.now()),
                "account": {
                    "username": staff.username, "role": staff.role, "alias": staff.alias,
                    "capacity": staff.capacity, "disabled": staff.disabled,
                    "languages": list(staff.languages), "created_at": staff.created_at,
                    "failed_logins": staff.failed_logins,
                    "locked_until": utc_iso(staff.locked_until) if staff.locked_until else None,
                    # Held, but never exported: they are credentials, not information.
                    "password": "argon2id hash held, not exported",
                    "totp": "sealed seed held, not exported",
                },
                "audit_retention_days": settings.audit_retention_days,
                "audit_entries": entries,
            }

    result = asyncio.run(run())
    if result is None:
        print(f"chatserver staff: error: unknown_account: no account {username!r}", file=err)
        return 1
    json.dump(result, out, ensure_ascii=False, indent=2)
    out.write("\n")
    return 0


def _export_cmd(args: argparse.Namespace) -> int:
    return export(load_settings(getattr(args, "config", None)), args.username)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("export", help="print everything held about one staff member as JSON "
                                      "(a data subject request; audited)")
    p.add_argument("username")
    p.set_defaults(func=_export_cmd)
