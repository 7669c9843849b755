"""``chatserver audit prune`` as a real subprocess on a real SQLite file, and
``audit verify`` after it: passing after a prune, failing after tampering."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from chatserver.domain.audit import AuditLog
from chatserver.domain.audit_retention import DAY_SECS
from chatserver.domain.clock import FakeClock
from chatserver.settings import REPO_ROOT, load_settings
from chatserver.storage.sqlite import SqliteStore
from tests.conftest import free_port, make_settings, start_server
from tests.helpers.postgres import fresh_database
from tests.integration.test_cli import data_dir, run

__all__ = ["data_dir"]  # the fixture


def old_entries(data_dir: Path) -> None:
    """Three entries from 1000 days ago, under the data dir's own audit key."""
    # Any CLI command creates the data dir, its secrets and the database.
    assert run(data_dir, "staff", "list").returncode == 0
    key = load_settings(REPO_ROOT / "config" / "test.toml", env={},
                        overrides={"data_dir": str(data_dir)}).require_secrets().audit_key

    async def write() -> None:
        async with SqliteStore.open(data_dir / "chatserver.sqlite3") as store:
            log = AuditLog(store, FakeClock(time.time() - 1000 * DAY_SECS), key)
            for on in (True, False, True):
                await log.record("anna", "duty_on" if on else "duty_off", on=on)

    asyncio.run(write())


def test_prune_keeps_the_chain_verifiable_and_tampering_is_caught(data_dir: Path) -> None:
    old_entries(data_dir)
    first = run(data_dir, "audit", "prune")
    assert first.returncode == 0, first.stderr
    # The head is never pruned: entries 1-2 go, 3 stays, 4 records the prune.
    assert "audit log pruned: 2 entries" in first.stdout and "through seq 2" in first.stdout
    ok = run(data_dir, "audit", "verify", "--print-head")
    assert ok.returncode == 0, ok.stdout
    assert "audit log OK: 2 entries" in ok.stdout
    assert "pruned: entries 1-2" in ok.stdout and "keyed: entries 3-4" in ok.stdout
    assert "head: seq=4 " in ok.stdout
    # Entry 3 is old and no longer the head; after it nothing is old.
    assert "audit log pruned: 1 entries" in run(data_dir, "audit", "prune").stdout
    idle = run(data_dir, "audit", "prune")
    assert idle.returncode == 0 and "nothing to prune" in idle.stdout
    con = sqlite3.connect(data_dir / "chatserver.sqlite3")
    assert con.execute("SELECT seq FROM audit ORDER BY seq").fetchall() == [(4,), (5,)]
    assert con.execute("SELECT seq FROM audit_checkpoint").fetchall() == [(2,), (3,)]
    assert run(data_dir, "audit", "verify").returncode == 0
    # Cutting past the checkpoint with the guard dropped breaks the chain.
    con.execute("DROP TRIGGER audit_no_delete")
    con.execute("DELETE FROM audit WHERE seq = 4")
    con.commit()
    con.close()
    broken = run(data_dir, "audit", "verify")
    assert broken.returncode == 1
    assert "BROKEN at seq 1: entries 1-4 are missing" in broken.stdout


async def test_the_server_prunes_at_start(data_dir: Path) -> None:
    await asyncio.to_thread(old_entries, data_dir)
    port = free_port()
    runner, server = await start_server(make_settings(
        data_dir, port=port, public_origin=f"http://localhost:{port}",
        audit_retention_days=365))
    try:
        # Start-up wrote an entry (the seeded directory) before the prune, so
        # all three old entries went.
        [checkpoint] = await server.ctx.store.audit_checkpoints()
        assert checkpoint.seq == 3
        actions = [e.action async for e in server.ctx.store.iter_audit()]
        assert "duty_on" not in actions and actions[-1] == "audit_pruned"
    finally:
        await runner.cleanup()
    assert run(data_dir, "audit", "verify").returncode == 0


async def test_a_pruned_log_copied_into_postgresql_still_verifies(data_dir: Path) -> None:
    await asyncio.to_thread(old_entries, data_dir)
    assert (await asyncio.to_thread(run, data_dir, "audit", "prune")).returncode == 0
    head = (await asyncio.to_thread(run, data_dir, "audit", "verify", "--print-head")).stdout
    db = data_dir / "chatserver.sqlite3"
    async with fresh_database() as url:
        copied = await asyncio.to_thread(run, data_dir, "store", "copy", "--from",
                                         f"sqlite:{db}", "--to", url)
        assert copied.returncode == 0, copied.stderr
        there = await asyncio.to_thread(run, data_dir, "audit", "verify", "--print-head",
                                        CHAT_DATABASE_URL=url)
        assert there.returncode == 0, there.stdout
        assert there.stdout == head and "pruned: entries 1-2" in there.stdout
