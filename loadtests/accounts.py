"""Bulk staff accounts for a load run, written straight into a fresh data
dir's SQLite file before the server starts — through the same domain function
the CLI uses (``auth.add_account``), without a process and a QR code per
account. Returns what the swarm needs to log in: username, password and the
base32 TOTP seed (the swarm computes codes itself, RFC 6238)."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from typing import Any

from chatserver.domain import auth
from chatserver.domain.audit import AuditLog
from chatserver.domain.clock import SystemClock
from chatserver.settings import Settings, load_settings
from chatserver.storage.sqlite import SqliteStore

ACTOR = "loadtest"


async def _create(settings: Settings, count: int, capacity: int, prefix: str
                  ) -> list[dict[str, Any]]:
    clock = SystemClock()
    guard = auth.LoginGuard(settings.password_profile)
    out: list[dict[str, Any]] = []
    async with SqliteStore.open(settings.database_path) as store:
        audit = AuditLog(store, clock, settings.require_secrets().audit_key)
        for i in range(count):
            username = f"{prefix}{i:05d}"
            password = secrets.token_urlsafe(18)
            created = await auth.add_account(
                username, password, role="counsellor", alias=f"Counsellor {i}",
                capacity=capacity, actor=ACTOR, store=store, audit=audit, clock=clock,
                settings=settings, guard=guard)
            out.append({"username": username, "password": password,
                        "totp_secret": created.totp_seed})
    return out


def create_counsellors(settings: Settings, count: int, capacity: int, prefix: str = "lt"
                       ) -> list[dict[str, Any]]:
    return asyncio.run(_create(settings, count, capacity, prefix))


if __name__ == "__main__":
    # python -m loadtests.accounts COUNT CAPACITY: settings from CHAT_* env (the
    # runner passes the server's), accounts as JSON on stdout.
    count, capacity = int(sys.argv[1]), int(sys.argv[2])
    print(json.dumps(create_counsellors(load_settings(), count, capacity)))
