"""SqliteStore: migrations, file hygiene and the staff table's atomic updates."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from chatserver.domain.audit import AuditLog, verify
from chatserver.domain.clock import FakeClock
from chatserver.errors import AccountExists
from chatserver.storage.base import LockoutPolicy, LoginAttempt, NewStaff
from chatserver.storage.sqlite import SqliteStore, migrations

KEY = bytes(32)  # the audit key; any 32 bytes


def _new(username: str = "anna", role: str = "counsellor") -> NewStaff:
    return NewStaff(username=username, password_hash="$argon2id$fake",
                    totp_seed_sealed=b"\x00sealed", role=role, alias="Sara", capacity=3,
                    created_at="2027-01-15T08:00:00.000Z")


# db_path and store: tests/unit/conftest.py


async def test_migrations_apply_once(db_path: Path) -> None:
    assert migrations()[0][:2] == (1, "0001_staff_audit_stats.sql")
    async with SqliteStore.open(db_path) as s:
        assert await s.schema_versions() == [v for v, _, _ in migrations()]
        await s.add_staff(_new())
    store = await SqliteStore.open(db_path)  # the awaitable form; must not re-apply
    try:
        assert await store.schema_versions() == [v for v, _, _ in migrations()]
        assert (await store.get_by_username("anna")) is not None
    finally:
        await store.close()


async def test_two_processes_opening_a_fresh_file_at_once(db_path: Path) -> None:
    stores = await asyncio.gather(*(SqliteStore.open(db_path) for _ in range(3)))
    try:
        for s in stores:
            assert await s.schema_versions() == [v for v, _, _ in migrations()]
    finally:
        for s in stores:
            await s.close()


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


async def test_ping(db_path: Path) -> None:
    s = await SqliteStore.open(db_path)
    assert await s.ping() is True
    await s.close()
    assert await s.ping() is False


async def test_staff_round_trip_and_duplicate(store: SqliteStore) -> None:
    added = await store.add_staff(_new())
    assert added.id > 0 and added.username == "anna" and added.disabled is False
    assert added.totp_seed_sealed == b"\x00sealed" and added.totp_last_timecode is None
    assert await store.get_by_id(added.id) == added
    with pytest.raises(AccountExists):
        await store.add_staff(_new())
    await store.add_staff(_new("bo", "operator"))
    assert [s.username for s in await store.list_staff()] == ["anna", "bo"]
    assert await store.get_by_username("nobody") is None
    assert await store.get_by_id(999) is None


async def test_role_is_checked_by_the_database(store: SqliteStore) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        await store.add_staff(_new("eve", "superuser"))
    assert await store.get_by_username("eve") is None


POLICY = LockoutPolicy(max_failures=3, base_secs=60, max_secs=3600)
NOW = 1_800_000_000.0


async def test_failures_and_locks(store: SqliteStore) -> None:
    staff = await store.add_staff(_new())
    attempts = [await store.reserve_login_attempt(staff.id, NOW, POLICY) for _ in range(4)]
    # Counted before the check; the third reaches the limit and locks at once.
    assert attempts == [LoginAttempt(True, 1, None), LoginAttempt(True, 2, None),
                        LoginAttempt(True, 3, NOW + 60), LoginAttempt(False, 3, NOW + 60)]
    got = await store.get_by_id(staff.id)
    assert got is not None and (got.failed_logins, got.locked_until) == (3, NOW + 60)
    await store.reset_failures(staff.id)
    got = await store.get_by_id(staff.id)
    assert got is not None and (got.failed_logins, got.locked_until) == (0, None)
    await store.set_disabled(staff.id, True)
    got = await store.get_by_id(staff.id)
    assert got is not None and got.disabled is True


async def test_the_store_locks_exactly_as_the_policy_says(store: SqliteStore) -> None:
    # The lock is computed in SQL (one statement); it must match
    # LockoutPolicy.lock_secs, doublings and cap included.
    staff = await store.add_staff(_new())
    policy = LockoutPolicy(max_failures=2, base_secs=7, max_secs=5000)
    now = NOW
    for failures in range(1, 45):
        attempt = await store.reserve_login_attempt(staff.id, now, policy)
        lock = policy.lock_secs(failures)
        assert attempt == LoginAttempt(True, failures, now + lock if lock else None), failures
        now += lock  # the lock runs out exactly now: the next attempt is granted
    assert policy.lock_secs(44) == 5000 and policy.lock_secs(3) == 14
    missing = await store.reserve_login_attempt(999, now, policy)
    assert missing == LoginAttempt(False, 0, None)


async def test_concurrent_reservations_grant_one_guess_per_unlock(db_path: Path) -> None:
    # Two connections to one file stand for two server processes: each has its
    # own in-process lock, so only the one SQL statement keeps this exact.
    async with SqliteStore.open(db_path) as one, SqliteStore.open(db_path) as two:
        staff = await one.add_staff(_new())

        async def burst(now: float) -> list[LoginAttempt]:
            return await asyncio.gather(*(
                (one if i % 2 else two).reserve_login_attempt(staff.id, now, POLICY)
                for i in range(24)))

        first = await burst(NOW)
        assert sorted(a.failures for a in first if a.granted) == [1, 2, 3]
        assert {a.locked_until for a in first if not a.granted} == {NOW + 60}
        # The lock runs out: of the next burst exactly one is checked, and it
        # locks again (for twice as long) before any other gets through.
        second = await burst(NOW + 60)
        granted = [a for a in second if a.granted]
        assert granted == [LoginAttempt(True, 4, NOW + 60 + 120)]
        assert sum(not a.granted for a in second) == 23


async def test_accept_totp_timecode_only_moves_forward(store: SqliteStore) -> None:
    staff = await store.add_staff(_new())
    assert await store.accept_totp_timecode(staff.id, 100) is True
    assert await store.accept_totp_timecode(staff.id, 100) is False
    assert await store.accept_totp_timecode(staff.id, 99) is False
    assert await store.accept_totp_timecode(staff.id, 101) is True
    results = await asyncio.gather(*(store.accept_totp_timecode(staff.id, 105)
                                     for _ in range(10)))
    assert results.count(True) == 1
    got = await store.get_by_id(staff.id)
    assert got is not None and got.totp_last_timecode == 105


async def test_accept_totp_timecode_across_connections(db_path: Path) -> None:
    async with SqliteStore.open(db_path) as a, SqliteStore.open(db_path) as b:
        staff = await a.add_staff(_new())
        results = await asyncio.gather(*(s.accept_totp_timecode(staff.id, 7)
                                         for s in (a, b, a, b)))
    assert results.count(True) == 1


async def test_failed_transaction_rolls_back(store: SqliteStore) -> None:
    def explode(last: object) -> object:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await store.append_audit(explode)  # type: ignore[arg-type]
    # The connection is usable again and nothing was written.
    assert await store.audit_head() is None
    await store.add_staff(_new())


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


async def test_one_failing_audit_entry_does_not_sink_its_batch(store: SqliteStore) -> None:
    log = AuditLog(store, FakeClock(), KEY)

    def explode(last: object) -> object:
        raise RuntimeError("boom")

    results = await asyncio.gather(
        log.record("youth", "conversation_start", "c-00000001"),
        store.append_audit(explode),  # type: ignore[arg-type]
        log.record("youth", "conversation_start", "c-00000002"),
        return_exceptions=True)
    assert isinstance(results[1], RuntimeError)
    assert [r.seq for r in (results[0], results[2])] == [1, 2]  # type: ignore[union-attr]
    assert (await verify(store, KEY)).ok
