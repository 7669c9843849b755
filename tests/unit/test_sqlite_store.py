"""What only SqliteStore has: its pragmas, file hygiene and group commit.

Everything both backends must do is in test_store_contract.py."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from chatserver.domain.audit import AuditLog, verify
from chatserver.domain.clock import FakeClock
from chatserver.storage.base import NewStaff
from chatserver.storage.sqlite import SqliteStore

KEY = bytes(32)  # the audit key; any 32 bytes


def _new(username: str = "anna", role: str = "counsellor") -> NewStaff:
    return NewStaff(username=username, password_hash="$argon2id$fake",
                    totp_seed_sealed=b"\x00sealed", role=role, alias="Sara", capacity=3,
                    created_at="2027-01-15T08:00:00.000Z")


# db_path and store: tests/unit/conftest.py


async def test_pragmas_and_file_hygiene(db_path: Path) -> None:
    async with SqliteStore.open(db_path) as s:
        db = s._db  # the connection's own settings are what matters
        assert (await (await db.execute("PRAGMA secure_delete")).fetchone())[0] == 1
        assert (await (await db.execute("PRAGMA foreign_keys")).fetchone())[0] == 1
        assert (await (await db.execute("PRAGMA journal_mode")).fetchone())[0] == "delete"
        await s.add_staff(_new())
        await s.add_counts("2027-01", {("topic", "other"): 1})
    assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(db_path.parent).st_mode) == 0o700
    # No journal or WAL left next to the database.
    assert sorted(p.name for p in db_path.parent.iterdir()) == [db_path.name]


async def test_concurrent_audit_appends_share_commits_and_keep_the_chain(
        store: SqliteStore) -> None:
    # Group commit (append_audit): many callers at once -> few transactions,
    # every caller gets its own committed entry, and the chain verifies.
    statements: list[str] = []
    await store._db.set_trace_callback(statements.append)
    log = AuditLog(store, FakeClock(), KEY)
    entries = await asyncio.gather(*(log.record("youth", "conversation_start", f"c-{i:08x}")
                                     for i in range(200)))
    await store._db.set_trace_callback(None)
    assert sorted(e.seq for e in entries) == list(range(1, 201))
    assert {e.conversation for e in entries} == {f"c-{i:08x}" for i in range(200)}
    commits = sum(1 for s in statements if s.strip().upper() == "COMMIT")
    assert 1 <= commits < 20  # one per entry was the old cost
    result = await verify(store, KEY)
    assert result.ok and result.rows == 200


