"""Staff login (domain/auth.py) and sessions (domain/sessions.py), on a real
SQLite file with a FakeClock and the cheap password profile."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chatserver.crypto import passwords, totp
from chatserver.domain import auth
from chatserver.domain.audit import AuditLog
from chatserver.domain.clock import FakeClock
from chatserver.domain.sessions import SessionStore
from chatserver.errors import (
    AccountExists,
    BadCredentials,
    CsrfFailed,
    LockedOut,
    RateLimited,
    UnknownAccount,
)
from chatserver.settings import DEFAULT_CONFIG_DIR, Settings, load_settings
from chatserver.storage.base import AuditEntry, StaffRecord
from chatserver.storage.sqlite import SqliteStore

PW = "correct horse battery staple"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(DEFAULT_CONFIG_DIR / "test.toml", env={},
                         overrides={"data_dir": str(tmp_path)})


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[SqliteStore]:
    async with SqliteStore.open(settings.database_path) as s:
        yield s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclasses.dataclass
class World:
    settings: Settings
    store: SqliteStore
    clock: FakeClock
    audit: AuditLog
    guard: auth.LoginGuard
    seed: str = ""

    async def login(self, username: str = "anna", password: str = PW,
                    code: str | None = None) -> StaffRecord:
        if code is None:
            code = totp.code_at(self.seed, self.clock.now())
        return await auth.login(username, password, code, store=self.store, audit=self.audit,
                                clock=self.clock, settings=self.settings, guard=self.guard)

    async def fails(self, *args: Any, **kwargs: Any) -> BadCredentials | LockedOut:
        with pytest.raises((BadCredentials, LockedOut)) as info:
            await self.login(*args, **kwargs)
        return info.value

    async def audit_rows(self) -> list[AuditEntry]:
        return [e async for e in self.store.iter_audit()]

    async def last_audit(self) -> AuditEntry:
        return (await self.audit_rows())[-1]

    async def staff(self) -> StaffRecord:
        record = await self.store.get_by_username("anna")
        assert record is not None
        return record


@pytest.fixture
async def w(settings: Settings, store: SqliteStore, clock: FakeClock) -> World:
    world = World(settings, store, clock, AuditLog(store, clock),
                  auth.LoginGuard(settings.password_profile))
    created = await auth.add_account(
        "anna", PW, role="counsellor", alias="Sara", capacity=3, actor="cli",
        store=store, audit=world.audit, clock=clock, settings=settings, guard=world.guard)
    world.seed = created.totp_seed
    return world


def _wrong_code(w: World) -> str:
    good = totp.code_at(w.seed, w.clock.now())
    return f"{(int(good) + 1) % 1_000_000:06d}"


# -- login ----------------------------------------------------------------------


async def test_login_ok(w: World) -> None:
    staff = await w.login()
    assert (staff.username, staff.role, staff.alias) == ("anna", "counsellor", "Sara")
    assert staff.totp_last_timecode == int(w.clock.now() // totp.INTERVAL_SECS)
    last = await w.last_audit()
    assert (last.actor, last.action) == ("anna", "login_ok")


async def test_login_normalises_username_and_code_spacing(w: World) -> None:
    code = totp.code_at(w.seed, w.clock.now())
    staff = await w.login("  Anna ", PW, f"{code[:3]} {code[3:]}")
    assert staff.username == "anna"


async def test_wrong_password(w: World) -> None:
    err = await w.fails(password=PW + "!")
    assert isinstance(err, BadCredentials) and err.info == {}
    last = await w.last_audit()
    assert (last.actor, last.action) == ("anna", "login_failed")
    assert '"reason":"password"' in last.detail
    assert (await w.staff()).failed_logins == 1


async def test_wrong_totp(w: World) -> None:
    err = await w.fails(code=_wrong_code(w))
    assert isinstance(err, BadCredentials)
    last = await w.last_audit()
    assert last.action == "totp_failed" and '"reason":"totp"' in last.detail
    assert (await w.staff()).totp_last_timecode is None


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", "", "１２３４５６"])
async def test_malformed_totp(w: World, code: str) -> None:
    assert isinstance(await w.fails(code=code), BadCredentials)


async def test_replayed_totp(w: World) -> None:
    code = totp.code_at(w.seed, w.clock.now())
    await w.login(code=code)
    # Given a stolen (shoulder-surfed) code, within the same window:
    w.clock.advance(10)
    err = await w.fails(code=code)
    assert isinstance(err, BadCredentials)
    last = await w.last_audit()
    assert last.action == "totp_failed" and '"reason":"replay"' in last.detail
    # The next step's code works.
    w.clock.advance(totp.INTERVAL_SECS)
    await w.login()


async def test_concurrent_logins_with_one_code_have_one_winner(w: World) -> None:
    code = totp.code_at(w.seed, w.clock.now())
    results = await asyncio.gather(*(w.login(code=code) for _ in range(5)),
                                   return_exceptions=True)
    assert sum(isinstance(r, StaffRecord) for r in results) == 1
    assert sum(isinstance(r, BadCredentials) for r in results) == 4


async def test_unknown_user_answers_like_a_wrong_password(w: World) -> None:
    wrong_pw = await w.fails(password="not the password")
    unknown = await w.fails(username="fatima.secret", password="not the password")
    assert type(unknown) is type(wrong_pw)
    assert (unknown.code, unknown.info, str(unknown)) == (wrong_pw.code, wrong_pw.info,
                                                          str(wrong_pw))
    last = await w.last_audit()
    assert (last.actor, last.action) == ("unknown", "login_failed")
    assert '"reason":"unknown"' in last.detail
    # The typed name is recorded nowhere.
    for e in await w.audit_rows():
        assert "fatima" not in repr(e)


async def test_invalid_username_is_unknown(w: World) -> None:
    assert isinstance(await w.fails(username="x" * 500), BadCredentials)
    assert isinstance(await w.fails(username="anna'; --"), BadCredentials)


async def test_disabled_account(w: World) -> None:
    await auth.set_account_disabled("anna", True, actor="cli", store=w.store, audit=w.audit)
    err = await w.fails()
    assert isinstance(err, BadCredentials)
    assert '"reason":"disabled"' in (await w.last_audit()).detail
    await auth.set_account_disabled("anna", False, actor="cli", store=w.store, audit=w.audit)
    w.clock.advance(totp.INTERVAL_SECS)
    assert (await w.login()).disabled is False


async def test_lockout_and_backoff(w: World) -> None:
    s = w.settings
    assert (s.login_max_failures, s.lockout_base_secs, s.lockout_max_secs) == (5, 60, 3600)
    for _ in range(s.login_max_failures - 1):
        assert isinstance(await w.fails(password="wrong password!"), BadCredentials)
    # The failure that reaches the limit locks for the base time.
    err = await w.fails(password="wrong password!")
    assert isinstance(err, LockedOut) and err.info == {"retry_after_secs": 60}
    # While locked even the right password is refused, and nothing is hashed.
    w.clock.advance(30)
    err = await w.fails()
    assert isinstance(err, LockedOut) and err.info == {"retry_after_secs": 30}
    assert '"reason":"locked"' in (await w.last_audit()).detail
    # Each further failure after the lock runs out doubles it, up to the cap.
    expected = [120, 240, 480, 960, 1920, 3600, 3600]
    for lock in expected:
        w.clock.advance((await w.staff()).locked_until - w.clock.now() + 1)  # type: ignore[operator]
        err = await w.fails(password="wrong password!")
        assert isinstance(err, LockedOut) and err.info == {"retry_after_secs": lock}
    # After the lock, the right credentials work and reset the count.
    w.clock.advance(3601)
    await w.login()
    staff = await w.staff()
    assert (staff.failed_logins, staff.locked_until) == (0, None)


async def test_totp_failures_count_towards_lockout(w: World) -> None:
    for _ in range(w.settings.login_max_failures - 1):
        await w.fails(code=_wrong_code(w))
    assert isinstance(await w.fails(code=_wrong_code(w)), LockedOut)


async def test_unknown_usernames_lock_out_like_real_ones(w: World) -> None:
    real = [await w.fails(password="wrong password!") for _ in range(5)]
    fake = [await w.fails(username="nobody", password="wrong password!") for _ in range(5)]
    assert [(type(e), e.info) for e in real] == [(type(e), e.info) for e in fake]
    assert isinstance(fake[-1], LockedOut)
    again = await w.fails(username="nobody")
    assert isinstance(again, LockedOut) and again.info == {"retry_after_secs": 60}


async def test_unlock_account(w: World) -> None:
    for _ in range(5):
        await w.fails(password="wrong password!")
    await auth.unlock_account("anna", actor="cli", store=w.store, audit=w.audit)
    await w.login()
    with pytest.raises(UnknownAccount):
        await auth.unlock_account("nobody", actor="cli", store=w.store, audit=w.audit)


async def test_rehash_on_login_when_the_profile_changed(w: World) -> None:
    staff = await w.staff()
    old = passwords.hash_password("rfc9106_low_memory", PW)
    await w.store.set_password_hash(staff.id, old)
    await w.login()
    new = (await w.staff()).password_hash
    assert new != old
    assert not passwords.needs_rehash(w.settings.password_profile, new)
    w.clock.advance(totp.INTERVAL_SECS)
    await w.login()  # the new hash verifies


async def test_no_rehash_when_current(w: World) -> None:
    before = (await w.staff()).password_hash
    await w.login()
    assert (await w.staff()).password_hash == before


async def test_secrets_never_in_reprs_or_audit(w: World) -> None:
    staff = await w.staff()
    text = repr(staff)
    assert staff.password_hash not in text and "argon2" not in text
    assert repr(staff.totp_seed_sealed) not in text
    code = totp.code_at(w.seed, w.clock.now())
    await w.fails(password="hunter2hunter2")
    await w.login(code=code)
    for e in await w.audit_rows():
        for secret in (PW, "hunter2hunter2", code, w.seed):
            assert secret not in repr(e)


# -- accounts -------------------------------------------------------------------


async def test_duplicate_account(w: World) -> None:
    with pytest.raises(AccountExists):
        await auth.add_account("anna", PW, role="operator", alias="Op", capacity=0, actor="cli",
                               store=w.store, audit=w.audit, clock=w.clock,
                               settings=w.settings, guard=w.guard)


@pytest.mark.parametrize(
    ("username", "password", "role", "alias", "capacity", "message"),
    [
        ("bo", "short", "counsellor", "B", 3, "at least 12"),
        ("Bo Karlsson", PW, "counsellor", "B", 3, "username"),
        ("bo", PW, "boss", "B", 3, "role"),
        ("bo", PW, "counsellor", "", 3, "alias"),
        ("bo", PW, "counsellor", "Bo", 3, "differ"),
        ("bo", PW, "counsellor", "B", -1, "capacity"),
    ],
)
async def test_account_checks(w: World, username: str, password: str, role: str, alias: str,
                              capacity: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        await auth.add_account(username, password, role=role, alias=alias, capacity=capacity,
                               actor="cli", store=w.store, audit=w.audit, clock=w.clock,
                               settings=w.settings, guard=w.guard)
    assert await w.store.get_by_username(username) is None


# -- hashing bounds -------------------------------------------------------------


async def test_guard_bounds_concurrent_hashing_and_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()
    running = 0
    peak = 0
    lock = threading.Lock()

    def slow_verify(profile: str, password_hash: str, password: str) -> bool:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        release.wait(5)
        with lock:
            running -= 1
        return True

    monkeypatch.setattr(passwords, "verify_password", slow_verify)
    guard = auth.LoginGuard("cheapest_for_tests", concurrency=1, max_waiting=1)
    first = asyncio.create_task(guard.verify("h", "p"))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(guard.verify("h", "p"))
    await asyncio.sleep(0.05)
    # One hashing, one waiting: a third is refused at once.
    with pytest.raises(RateLimited):
        await guard.verify("h", "p")
    # Cancelling the running request does not free its slot before its thread ends.
    first.cancel()
    await asyncio.sleep(0.05)
    assert peak == 1 and not second.done()
    release.set()
    assert await second is True
    assert peak == 1


# -- sessions -------------------------------------------------------------------


@pytest.fixture
def sessions(settings: Settings, clock: FakeClock) -> SessionStore:
    return SessionStore.from_settings(settings, clock)


@pytest.fixture
async def anna(w: World) -> StaffRecord:
    return await w.staff()


def test_session_create_and_get(sessions: SessionStore, anna: StaffRecord) -> None:
    token, csrf = sessions.create(anna)
    s = sessions.get(token)
    assert s is not None and (s.staff_id, s.username, s.role, s.alias) == (
        anna.id, "anna", "counsellor", "Sara")
    assert s.csrf == csrf and token != csrf
    assert sessions.get(token + "x") is None
    assert sessions.get(None) is None and sessions.get("") is None
    assert sessions.get("a" * 10_000) is None


def test_only_a_keyed_hash_of_the_token_is_kept(sessions: SessionStore,
                                                anna: StaffRecord) -> None:
    token, csrf = sessions.create(anna)
    held = repr(vars(sessions)) if hasattr(sessions, "__dict__") else ""
    assert token not in held and token.encode() not in b"".join(sessions._by_hash)
    s = sessions.get(token)
    assert s is not None and csrf not in repr(s) and token not in repr(sessions)


def test_idle_timeout_is_refreshed_by_use(sessions: SessionStore, anna: StaffRecord,
                                          clock: FakeClock, settings: Settings) -> None:
    idle = settings.session_idle_secs
    token, _ = sessions.create(anna)
    clock.advance(idle - 1)
    assert sessions.get(token) is not None
    clock.advance(idle - 1)
    assert sessions.get(token) is not None  # touched at the previous get
    clock.advance(idle)
    assert sessions.get(token) is None
    clock.advance(-idle)  # expired sessions are gone, not just hidden
    assert sessions.get(token) is None


def test_absolute_timeout(sessions: SessionStore, anna: StaffRecord, clock: FakeClock,
                          settings: Settings) -> None:
    token, _ = sessions.create(anna)
    step = settings.session_idle_secs // 2
    elapsed = 0
    while elapsed + step < settings.session_absolute_secs:
        clock.advance(step)
        elapsed += step
        assert sessions.get(token) is not None
    clock.advance(settings.session_absolute_secs - elapsed)
    assert sessions.get(token) is None


def test_revoke_and_rotation(sessions: SessionStore, anna: StaffRecord) -> None:
    old, _ = sessions.create(anna)
    new, _ = sessions.create(anna, replacing=old)
    assert new != old
    assert sessions.get(old) is None and sessions.get(new) is not None
    assert sessions.revoke(new) is True and sessions.revoke(new) is False
    assert sessions.get(new) is None


def test_revoke_staff(sessions: SessionStore, anna: StaffRecord) -> None:
    other = dataclasses.replace(anna, id=anna.id + 1, username="bo")
    a1, _ = sessions.create(anna)
    a2, _ = sessions.create(anna)
    b, _ = sessions.create(other)
    assert sessions.revoke_staff(anna.id) == 2
    assert sessions.get(a1) is None and sessions.get(a2) is None
    assert sessions.get(b) is not None


def test_purge_expired(sessions: SessionStore, anna: StaffRecord, clock: FakeClock,
                       settings: Settings) -> None:
    sessions.create(anna)
    clock.advance(settings.session_idle_secs - 10)
    keep, _ = sessions.create(anna)
    clock.advance(20)
    assert sessions.purge_expired() == 1
    assert len(sessions) == 1 and sessions.get(keep) is not None


def test_csrf(sessions: SessionStore, anna: StaffRecord) -> None:
    token, csrf = sessions.create(anna)
    _, other_csrf = sessions.create(anna)
    s = sessions.get(token)
    assert s is not None
    SessionStore.check_csrf(s, csrf)
    for bad in (None, "", other_csrf, csrf[:-1], csrf + "A", "x" * 10_000):
        with pytest.raises(CsrfFailed):
            SessionStore.check_csrf(s, bad)
