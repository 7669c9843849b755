"""The append-only, hash-chained audit log (domain/audit.py, crypto/audit_chain.py,
storage/sqlite.py), on real SQLite files."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatserver.crypto.audit_chain import GENESIS, entry_hash
from chatserver.domain.audit import AuditLog, VerifyResult, utc_iso, verify
from chatserver.domain.clock import FakeClock
from chatserver.storage.base import AuditEntry
from chatserver.storage.sqlite import SqliteStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "chat.sqlite3"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore.open(db_path) as s:
        yield s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def _entries(store: SqliteStore) -> list[AuditEntry]:
    return [e async for e in store.iter_audit()]


async def _fill(db_path: Path, n: int = 5) -> list[AuditEntry]:
    clock = FakeClock()
    async with SqliteStore.open(db_path) as store:
        log = AuditLog(store, clock)
        for i in range(n):
            await log.record("anna", "claim", conversation=f"c-{i:08x}", count=i)
            clock.advance(1)
        return await _entries(store)


def _tamper(db_path: Path, *statements: str | tuple[str, tuple[object, ...]]) -> None:
    """What someone with the file can do: drop the triggers, then rewrite rows."""
    con = sqlite3.connect(db_path)
    try:
        con.execute("DROP TRIGGER audit_no_update")
        con.execute("DROP TRIGGER audit_no_delete")
        for statement in statements:
            sql, params = (statement, ()) if isinstance(statement, str) else statement
            con.execute(sql, params)
        con.commit()
    finally:
        con.close()


async def _verify_file(db_path: Path, expect_head: str | None = None) -> VerifyResult:
    async with SqliteStore.open(db_path) as store:
        return await verify(store, expect_head)


def test_entry_hash_is_blake2b_over_prev_and_canonical_json() -> None:
    fields = {"seq": 1, "b": "ä", "a": None}
    expected = hashlib.blake2b(
        (GENESIS + '{"a":null,"b":"\\u00e4","seq":1}').encode(), digest_size=32
    ).hexdigest()
    assert entry_hash(GENESIS, fields) == expected
    assert entry_hash(GENESIS, {"a": None, "seq": 1, "b": "ä"}) == expected  # key order
    assert entry_hash("1" * 64, fields) != expected
    with pytest.raises(ValueError):
        entry_hash("short", fields)


async def test_entries_are_chained_and_verify(store: SqliteStore, clock: FakeClock) -> None:
    log = AuditLog(store, clock)
    first = await log.record("anna", "login_ok")
    clock.advance(2.5)
    second = await log.record("system", "conversation_end", conversation="c-1a2b3c4d",
                              reason="done", count=12)
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS
    assert second.prev_hash == first.hash
    assert first.at == utc_iso(clock.now() - 2.5)
    assert second.at.endswith("Z") and second.at.startswith("2027-01-15T08:00:02.500")
    assert json.loads(second.detail) == {"reason": "done", "count": 12}
    assert second.detail == '{"count":12,"reason":"done"}'  # canonical form
    stored = await _entries(store)
    assert stored == [first, second]
    result = await verify(store)
    assert result.ok and result.rows == 2 and result.first_bad_seq is None
    assert result.head_hash == second.hash


async def test_empty_log_verifies(store: SqliteStore) -> None:
    result = await verify(store)
    assert result.ok and result.rows == 0 and result.head_hash == GENESIS


async def test_concurrent_appends_keep_one_chain(store: SqliteStore, clock: FakeClock) -> None:
    log = AuditLog(store, clock)
    await asyncio.gather(*(log.record("system", "rate_limited", count=i) for i in range(40)))
    entries = await _entries(store)
    assert [e.seq for e in entries] == list(range(1, 41))
    assert (await verify(store)).ok


async def test_two_connections_to_one_file_keep_one_chain(db_path: Path) -> None:
    # The server and the CLI are separate processes with separate connections.
    async with SqliteStore.open(db_path) as a, SqliteStore.open(db_path) as b:
        log_a, log_b = AuditLog(a, FakeClock()), AuditLog(b, FakeClock())
        await asyncio.gather(
            *(log.record("cli", "account_added", target=f"u{i}")
              for i in range(15) for log in (log_a, log_b))
        )
        result = await verify(a)
    assert result.ok and result.rows == 30


async def test_update_and_delete_are_refused_by_the_database(db_path: Path) -> None:
    await _fill(db_path, 3)
    con = sqlite3.connect(db_path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 2")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute("DELETE FROM audit WHERE seq = 2")
        con.rollback()
        assert con.execute("SELECT count(*) FROM audit").fetchone()[0] == 3
        assert con.execute("SELECT actor FROM audit WHERE seq = 2").fetchone()[0] == "anna"
    finally:
        con.close()


async def test_edited_row_is_named(db_path: Path) -> None:
    await _fill(db_path)
    _tamper(db_path, "UPDATE audit SET actor = 'someone_else' WHERE seq = 3")
    result = await _verify_file(db_path)
    assert not result.ok
    assert result.first_bad_seq == 3 and result.rows == 2
    assert "edited" in result.problem


async def test_edited_detail_is_named(db_path: Path) -> None:
    await _fill(db_path)
    _tamper(db_path, "UPDATE audit SET detail = '{\"count\":99}' WHERE seq = 4")
    result = await _verify_file(db_path)
    assert (result.ok, result.first_bad_seq) == (False, 4)


async def test_edited_row_with_recomputed_hash_breaks_the_next_link(db_path: Path) -> None:
    entries = await _fill(db_path)
    e = entries[2]
    forged = AuditEntry(e.seq, e.at, "someone_else", e.action, e.conversation, e.detail,
                        e.prev_hash, "")
    new_hash = entry_hash(e.prev_hash, forged.hashed_fields())
    _tamper(db_path, ("UPDATE audit SET actor = 'someone_else', hash = ? WHERE seq = 3",
                      (new_hash,)))
    result = await _verify_file(db_path)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "prev_hash" in result.problem


async def test_deleted_middle_row_is_named(db_path: Path) -> None:
    await _fill(db_path)
    _tamper(db_path, "DELETE FROM audit WHERE seq = 3")
    result = await _verify_file(db_path)
    assert (result.ok, result.first_bad_seq, result.rows) == (False, 3, 2)
    assert "missing" in result.problem


async def test_deleted_and_renumbered_rows_are_named(db_path: Path) -> None:
    await _fill(db_path)
    _tamper(db_path, "DELETE FROM audit WHERE seq = 3",
            "UPDATE audit SET seq = seq - 1 WHERE seq > 3")
    result = await _verify_file(db_path)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "prev_hash" in result.problem


async def test_reordered_rows_are_named(db_path: Path) -> None:
    await _fill(db_path)
    _tamper(db_path, "UPDATE audit SET seq = -1 WHERE seq = 2",
            "UPDATE audit SET seq = 2 WHERE seq = 3",
            "UPDATE audit SET seq = 3 WHERE seq = -1")
    result = await _verify_file(db_path)
    assert (result.ok, result.first_bad_seq) == (False, 2)


async def test_truncated_tail_is_found_only_against_an_exported_head(db_path: Path) -> None:
    entries = await _fill(db_path)
    head = entries[-1].hash
    assert (await _verify_file(db_path, head)).ok
    _tamper(db_path, "DELETE FROM audit WHERE seq = 5")
    # The known limit: a shorter chain is still a valid chain ...
    assert (await _verify_file(db_path)).ok
    # ... and the head noted elsewhere shows what is gone.
    result = await _verify_file(db_path, head)
    assert not result.ok and result.first_bad_seq == 5
    assert "head" in result.problem


@pytest.mark.parametrize(
    "detail",
    [
        {"text": "hello"},  # not an allowed key
        {"message": "x"},
        {"reason": "I am scared, please help"},  # free text: spaces
        {"reason": "x" * 65},  # too long
        {"count": 1.5},
        {"reason": None},
        {"reason": ["done"]},
        {"reason": {"nested": "done"}},
        {"reason": "rad\nbrytning"},
    ],
)
async def test_detail_allowlist(store: SqliteStore, clock: FakeClock,
                                detail: dict[str, object]) -> None:
    log = AuditLog(store, clock)
    with pytest.raises(ValueError) as info:
        await log.record("anna", "conversation_end", **detail)
    for value in detail.values():
        if isinstance(value, str) and value:
            assert value not in str(info.value)  # the refused value is not echoed
    assert await _entries(store) == []


async def test_allowed_detail_values(store: SqliteStore, clock: FakeClock) -> None:
    log = AuditLog(store, clock)
    e = await log.record("anna", "duty", on=True, capacity=3, reason="panic_exit",
                         target="bo.k-2", retry_after_secs=60, outcome="ok")
    assert json.loads(e.detail)["on"] is True


@pytest.mark.parametrize(
    ("actor", "action", "conversation"),
    [
        ("Anna Karlsson", "login_ok", None),  # not a username
        ("", "login_ok", None),
        ("anna", "Login OK", None),
        ("anna", "claim", "0123456789abcdef0123456789abcdef"),  # a wire id, not a pseudonym
        ("anna", "claim", "c-XYZ"),
    ],
)
async def test_actor_action_and_conversation_are_checked(
    store: SqliteStore, clock: FakeClock, actor: str, action: str, conversation: str | None
) -> None:
    with pytest.raises(ValueError):
        await AuditLog(store, clock).record(actor, action, conversation)
    assert await _entries(store) == []
