"""The store contract: the same assertions on SQLite and on PostgreSQL.

``backend`` (tests/unit/conftest.py) runs each test on both. ``backend.open()``
opens another store on the same database: a second process on SQLite, a
second node with its own connection pool on PostgreSQL. Each store keeps its
own in-process state (the audit group commit, SQLite's write lock), so only
the database's own atomicity keeps the two-store tests exact.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chatserver.domain.audit import AuditLog, verify
from chatserver.domain.clock import FakeClock
from chatserver.errors import AccountExists
from chatserver.storage.base import LockoutPolicy, LoginAttempt, NewStaff, ReturnRow
from chatserver.storage.schema import migrations
from tests.conftest import free_port
from tests.helpers import postgres as pg_helpers
from tests.unit.conftest import Backend

KEY = bytes(32)  # the audit key; any 32 bytes
POLICY = LockoutPolicy(max_failures=3, base_secs=60, max_secs=3600)
NOW = 1_800_000_000.0


def _new(username: str = "anna", role: str = "counsellor") -> NewStaff:
    return NewStaff(username=username, password_hash="$argon2id$fake",
                    totp_seed_sealed=b"\x00sealed", role=role, alias="Sara", capacity=3,
                    created_at="2027-01-15T08:00:00.000Z")


def test_both_backends_have_the_same_migration_versions() -> None:
    sqlite, pg = migrations("sqlite"), migrations("postgresql")
    assert [v for v, _, _ in sqlite] == [v for v, _, _ in pg] == list(range(1, len(sqlite) + 1))
    assert [n.split(".")[0] for _, n, _ in sqlite] == [n.split(".")[0] for _, n, _ in pg]
    assert pg[0][1] == "0001_staff_audit_stats.postgres.sql"


async def test_migrations_apply_once(backend: Backend) -> None:
    versions = [v for v, _, _ in migrations(backend.name)]
    async with backend.open() as s:
        assert await s.schema_versions() == versions
        await s.add_staff(_new())
    store = await backend.open()  # the awaitable form; must not re-apply
    try:
        assert await store.schema_versions() == versions
        assert (await store.get_by_username("anna")) is not None
    finally:
        await store.close()


async def test_several_nodes_opening_a_fresh_database_at_once(backend: Backend) -> None:
    stores = await asyncio.gather(*(backend.open() for _ in range(3)))
    try:
        for s in stores:
            assert await s.schema_versions() == [v for v, _, _ in migrations(backend.name)]
    finally:
        for s in stores:
            await s.close()


async def test_ping(backend: Backend) -> None:
    s = await backend.open()
    assert await s.ping() is True
    await s.close()
    assert await s.ping() is False


async def test_staff_round_trip_and_duplicate(any_store: Any) -> None:
    store = any_store
    added = await store.add_staff(_new())
    assert added.id > 0 and added.username == "anna" and added.disabled is False
    assert added.totp_seed_sealed == b"\x00sealed" and added.totp_last_timecode is None
    assert await store.get_by_id(added.id) == added
    with pytest.raises(AccountExists):
        await store.add_staff(_new())
    await store.add_staff(_new("bo", "operator"))
    await store.add_staff(_new("Zed", "admin"))
    # Byte order on both backends: upper case before lower case.
    assert [s.username for s in await store.list_staff()] == ["Zed", "anna", "bo"]
    assert await store.get_by_username("nobody") is None
    assert await store.get_by_id(999) is None
    await store.set_disabled(added.id, True)
    assert await store.disabled_staff_ids() == {added.id}
    await store.set_password_hash(added.id, "$argon2id$other")
    got = await store.get_by_id(added.id)
    assert got is not None and got.password_hash == "$argon2id$other" and got.disabled


async def test_staff_languages_round_trip(any_store: Any) -> None:
    store = any_store
    anna = await store.add_staff(_new())
    bo = await store.add_staff(_new("bo"))
    assert anna.languages == ()  # a new account speaks none until set
    await store.set_languages(anna.id, ("so", "sv", "ckb"))
    got = await store.get_by_id(anna.id)
    assert got is not None and got.languages == ("so", "sv", "ckb")  # in the order given
    assert (await store.get_by_username("anna")) == got
    assert [s.languages for s in await store.list_staff()] == [("so", "sv", "ckb"), ()]
    await store.set_languages(anna.id, ())
    cleared = await store.get_by_id(anna.id)
    assert cleared is not None and cleared.languages == ()
    other = await store.get_by_id(bo.id)
    assert other is not None and other.languages == ()


async def test_role_is_checked_by_the_database(backend: Backend, any_store: Any) -> None:
    with pytest.raises(backend.check_violation):
        await any_store.add_staff(_new("eve", "superuser"))
    assert await any_store.get_by_username("eve") is None


async def test_failures_and_locks(any_store: Any) -> None:
    store = any_store
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


async def test_the_store_locks_exactly_as_the_policy_says(any_store: Any) -> None:
    # The lock is computed in SQL (one statement); it must match
    # LockoutPolicy.lock_secs, doublings and cap included.
    store = any_store
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


async def test_concurrent_reservations_on_two_nodes_grant_one_guess_per_unlock(
        backend: Backend) -> None:
    async with backend.open() as one, backend.open() as two:
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


async def test_accept_totp_timecode_only_moves_forward(any_store: Any) -> None:
    store = any_store
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


async def test_accept_totp_timecode_on_two_nodes(backend: Backend) -> None:
    async with backend.open() as a, backend.open() as b:
        staff = await a.add_staff(_new())
        await a.reserve_login_attempt(staff.id, NOW, POLICY)
        results = await asyncio.gather(*(s.accept_totp_timecode(staff.id, 7)
                                         for s in (a, b, a, b)))
        got = await b.get_by_id(staff.id)
    assert results.count(True) == 1
    assert got is not None and (got.totp_last_timecode, got.failed_logins) == (7, 0)


async def test_failed_transaction_rolls_back(any_store: Any) -> None:
    def explode(last: object) -> object:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await any_store.append_audit(explode)
    # The store is usable again and nothing was written.
    assert await any_store.audit_head() is None
    await any_store.add_staff(_new())


async def test_one_failing_audit_entry_does_not_sink_its_batch(any_store: Any) -> None:
    log = AuditLog(any_store, FakeClock(), KEY)

    def explode(last: object) -> object:
        raise RuntimeError("boom")

    results = await asyncio.gather(
        log.record("youth", "conversation_start", "c-00000001"),
        any_store.append_audit(explode),
        log.record("youth", "conversation_start", "c-00000002"),
        return_exceptions=True)
    assert isinstance(results[1], RuntimeError)
    assert [r.seq for r in (results[0], results[2])] == [1, 2]
    assert (await verify(any_store, KEY)).ok


async def test_two_nodes_appending_200_audit_entries_each_keep_one_chain(
        backend: Backend) -> None:
    async with backend.open() as one, backend.open() as two:
        logs = [AuditLog(s, FakeClock(), KEY) for s in (one, two)]
        entries = await asyncio.gather(*(
            logs[i % 2].record("youth", "conversation_start", f"c-{i:08x}")
            for i in range(400)))
        assert sorted(e.seq for e in entries) == list(range(1, 401))
        result = await verify(one, KEY)
        assert result.ok and result.rows == 400
        head = await two.audit_head()
        assert head is not None and head.seq == 400 and head.hash == result.head_hash
        seen = [e.conversation async for e in two.iter_audit()]
    assert sorted(seen) == sorted(f"c-{i:08x}" for i in range(400))


async def test_the_audit_log_refuses_changes(backend: Backend, any_store: Any) -> None:
    await AuditLog(any_store, FakeClock(), KEY).record("youth", "conversation_start", "c-00000001")
    if backend.name == "sqlite":
        db = any_store._db
        for sql in ("UPDATE audit SET actor = 'x'", "DELETE FROM audit"):
            with pytest.raises(Exception, match="append-only"):
                await db.execute(sql)
        return
    async with any_store._pool.acquire() as con:
        for sql in ("UPDATE audit SET actor = 'x'", "DELETE FROM audit", "TRUNCATE audit"):
            with pytest.raises(Exception, match="append-only"):
                await con.execute(sql)
    assert (await verify(any_store, KEY)).rows == 1


async def test_stats_add_up(any_store: Any) -> None:
    await any_store.add_counts("2027-01", {("topic", "other"): 2, ("lang", "sv"): 1,
                                           ("zero", "x"): 0})
    await any_store.add_counts("2027-01", {("topic", "other"): 3})
    await any_store.add_counts("2027-02", {("topic", "other"): 1})
    await any_store.add_counts("2027-02", {})
    assert await any_store.get_counts("2027-01") == {("topic", "other"): 5, ("lang", "sv"): 1}
    assert await any_store.get_counts("2027-02") == {("topic", "other"): 1}
    assert await any_store.get_counts("2027-03") == {}


async def test_two_nodes_adding_stats_for_one_month_lose_nothing(backend: Backend) -> None:
    async with backend.open() as one, backend.open() as two:
        # Each call adds to the same keys, in a different order per node.
        keys = [("topic", "other"), ("lang", "sv"), ("age", "13-15")]
        await asyncio.gather(*(
            (one if i % 2 else two).add_counts(
                "2027-01", {k: 1 for k in (keys if i % 2 else keys[::-1])})
            for i in range(60)))
        assert await two.get_counts("2027-01") == {k: 60 for k in keys}


async def test_stats_range_reads_only_its_months(any_store: Any) -> None:
    for month in ("2026-12", "2027-01", "2027-02", "2027-03"):
        await any_store.add_counts(month, {("topic", "other"): int(month[-2:])})
    assert await any_store.counts_between("2027-01", "2027-02") == {
        ("2027-01", "topic", "other"): 1, ("2027-02", "topic", "other"): 2}
    assert await any_store.counts_between("2027-04", "2027-12") == {}


async def test_manual_counts_replace_and_return_the_old_value(any_store: Any) -> None:
    assert await any_store.set_manual_count("2027-01", "seminar", 3) is None
    assert await any_store.set_manual_count("2027-01", "seminar", 5) == 3
    assert await any_store.set_manual_count("2027-01", "phone", 0) is None
    assert await any_store.set_manual_count("2027-02", "seminar", 1) is None
    assert await any_store.manual_counts_between("2027-01", "2027-01") == {
        ("2027-01", "seminar"): 5, ("2027-01", "phone"): 0}
    assert len(await any_store.manual_counts_between("2027-01", "2027-12")) == 3


async def test_two_nodes_correcting_one_manual_count_lose_no_update(backend: Backend) -> None:
    # Each correction returns the value it replaced. With every write seen
    # by exactly one later write, the (old, new) pairs form one chain from
    # "none" to the final value: no two corrections replaced the same value.
    async with backend.open() as one, backend.open() as two:
        values = list(range(1, 41))
        olds = await asyncio.gather(*(
            (one if v % 2 else two).set_manual_count("2027-01", "visit", v) for v in values))
        final = (await one.manual_counts_between("2027-01", "2027-01"))[("2027-01", "visit")]
        assert olds.count(None) == 1
        replaced = [o for o in olds if o is not None]
        assert len(set(replaced)) == len(replaced) == len(values) - 1
        assert set(replaced) | {final} == set(values)


async def test_return_codes_round_trip_and_purge(any_store: Any) -> None:
    assert await any_store.add_return_code(b"k1", "r-1", b"sealed1", NOW + 10) is True
    assert await any_store.add_return_code(b"k1", "r-2", b"other", NOW + 10) is False
    assert await any_store.add_return_code(b"k2", "r-3", b"sealed2", NOW - 1) is True
    assert await any_store.add_return_code(b"k3", "r-4", b"sealed3", NOW) is True
    assert await any_store.purge_return_codes(NOW) == 2
    assert await any_store.redeem_return_code(b"k2") is None
    assert await any_store.redeem_return_code(b"k1") == ReturnRow("r-1", b"sealed1", NOW + 10)
    assert await any_store.redeem_return_code(b"k1") is None


async def test_two_nodes_redeeming_one_passphrase_have_one_winner(backend: Backend) -> None:
    async with backend.open() as one, backend.open() as two:
        for round_ in range(5):
            lookup = bytes([round_]) * 32
            assert await one.add_return_code(lookup, f"r-{round_}", b"s", NOW)
            results = await asyncio.gather(*(
                (one if i % 2 else two).redeem_return_code(lookup) for i in range(10)))
            assert sum(r is not None for r in results) == 1, round_


async def test_an_unreachable_postgresql_fails_under_ci_instead_of_skipping(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_helpers, "ADMIN_URL",
                        f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    monkeypatch.setattr(pg_helpers, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL is not reachable"):
        async with pg_helpers.fresh_database():
            pass
