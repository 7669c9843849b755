"""Staff login (domain/auth.py) and sessions (domain/sessions.py), on a real
SQLite file with a FakeClock and the cheap password profile."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
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
from chatserver.settings import Settings
from chatserver.storage.base import AuditEntry, StaffRecord
from chatserver.storage.sqlite import SqliteStore
from tests.helpers.waiting import eventually

PW = "correct horse battery staple"


# settings: tests/conftest.py; store and clock: tests/unit/conftest.py


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
    world = World(settings, store, clock,
                  AuditLog(store, clock, settings.require_secrets().audit_key),
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


# Below LoginGuard's waiting line (MAX_WAITING = 32), so no attempt of the
# burst is turned away for a full line: every refusal below is the lock's.
BURST = 30


def count_password_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every argon2 verify the login runs (the real one still runs)."""
    checked: list[str] = []
    real = passwords.verify_password

    def counting(profile: str, password_hash: str, password: str) -> bool:
        checked.append(password)
        return real(profile, password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", counting)
    return checked


@pytest.mark.parametrize(("username", "checked_reason"),
                         [("anna", "password"), ("nobody", "unknown")])
async def test_a_concurrent_burst_gets_the_allowed_guesses_and_one_per_unlock(
        w: World, monkeypatch: pytest.MonkeyPatch, username: str, checked_reason: str) -> None:
    # Many wrong passwords at once, on real SQLite (or the in-memory counters
    # for a name that does not exist): the lock is one atomic step before the
    # hash, so only login_max_failures are ever checked, not the whole burst.
    limit, base = w.settings.login_max_failures, w.settings.lockout_base_secs
    checked = count_password_checks(monkeypatch)

    async def burst() -> list[BaseException | StaffRecord]:
        return await asyncio.gather(
            *(w.login(username, "wrong password!") for _ in range(BURST)),
            return_exceptions=True)

    answers = await burst()
    assert len(checked) == limit
    kinds = [type(a) for a in answers]
    assert (kinds.count(BadCredentials), kinds.count(LockedOut)) == (limit - 1, BURST - limit + 1)
    details = [e.detail for e in await w.audit_rows() if e.action == "login_failed"]
    assert sum(f'"reason":"{checked_reason}"' in d for d in details) == limit
    assert sum('"reason":"locked"' in d for d in details) == BURST - limit

    # The lock runs out: the next burst gets exactly one guess, and that guess
    # locks again (for twice as long) before any other is checked.
    w.clock.advance(base)
    checked.clear()
    answers = await burst()
    assert len(checked) == 1
    assert all(isinstance(a, LockedOut) and a.info == {"retry_after_secs": 2 * base}
               for a in answers), answers
    if username == "anna":
        assert (await w.staff()).failed_logins == limit + 1


async def test_a_right_password_in_a_locked_burst_is_not_checked(
        w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # The attacker's burst reaches the limit first; the owner's right
    # password, arriving while the lock holds, is refused without a hash.
    checked = count_password_checks(monkeypatch)
    await asyncio.gather(*(w.login(password="wrong password!") for _ in range(BURST)),
                         return_exceptions=True)
    err = await w.fails()
    assert isinstance(err, LockedOut)
    assert PW not in checked and len(checked) == w.settings.login_max_failures


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
        # The audit log's fixed actors: an account by one of these names would
        # make its entries look like a youth's, the system's, ...
        *[(name, PW, "counsellor", "B", 3, "reserved")
          for name in ("youth", "system", "cli", "unknown", "liaison")],
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

    # Hashes handed to a worker thread, counted in the event loop's own thread
    # at the moment of handing over. Whether a thread has *started* depends on
    # the machine's load; whether the guard handed one over does not.
    handed = 0

    class CountingExecutor(ThreadPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            nonlocal handed
            handed += 1
            return super().submit(fn, *args, **kwargs)

    async def settle() -> None:
        # Let every task run as far as it can without waiting for a thread:
        # a freed slot would be taken and its hash handed over within a few
        # turns of the loop, however slow the machine.
        for _ in range(20):
            await asyncio.sleep(0)

    asyncio.get_running_loop().set_default_executor(CountingExecutor(max_workers=4))
    monkeypatch.setattr(passwords, "verify_password", slow_verify)
    guard = auth.LoginGuard("cheapest_for_tests", concurrency=1, max_waiting=1)
    first = asyncio.create_task(guard.verify("h", "p"))
    await eventually(lambda: running == 1)  # hashing, in its thread
    second = asyncio.create_task(guard.verify("h", "p"))
    await settle()
    # One hashing, one waiting: a third is refused at once.
    with pytest.raises(RateLimited):
        await guard.verify("h", "p")
    # Cancelling the running request does not free its slot before its thread ends.
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    await settle()
    assert handed == 1 and not second.done()
    release.set()
    assert await second is True
    assert handed == 2 and peak == 1


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
