"""Staff login (password + TOTP, lockout with backoff) and account management.

Design: docs/design/staff-auth.md. Every failure looks the same from outside
(``BadCredentials``, or ``LockedOut`` with ``retry_after_secs``); the reason
is written to the audit log only. Argon2 runs in worker threads behind
``LoginGuard``'s semaphore, so unauthenticated requests can neither block the
event loop nor make the process hash more than a few passwords at a time.

Lockout is one atomic step before the hash: an attempt is counted as a
failure and, at the limit, locks the account *before* its password is
checked (``StaffStore.reserve_login_attempt``); a login that succeeds clears
the count. So concurrent guesses cannot all pass the lock test on the same
count: at most ``login_max_failures`` are checked before the lock, and one
after each lock runs out.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn, TypeVar

from chatserver.crypto import passwords, seal, totp
from chatserver.domain.audit import ACTOR_UNKNOWN, FIXED_ACTORS, AuditLog, utc_iso
from chatserver.domain.clock import Clock
from chatserver.errors import BadCredentials, LockedOut, RateLimited, UnknownAccount
from chatserver.settings import Settings
from chatserver.storage.base import (
    STAFF_ROLES,
    LockoutPolicy,
    LoginAttempt,
    NewStaff,
    StaffRecord,
    StaffStore,
)

T = TypeVar("T")

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
# NIST SP 800-63B asks for at least 8; staff accounts guard a sensitive
# service, so 12.
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = passwords.MAX_PASSWORD_CHARS
MAX_ALIAS_CHARS = 40
MAX_CAPACITY = 50
MAX_LANGUAGES = 12  # joined with '+' they fit one audit detail value (64 characters)
# Two argon2 hashes at a time: RFC 9106 low-memory uses 64 MiB each, and the
# reference node has 2 cores. Further logins wait, up to MAX_WAITING of them;
# beyond that they are refused at once with ``rate_limited``.
HASH_CONCURRENCY = 2
MAX_WAITING = 32
# Lockout counters for usernames that do not exist (see LoginGuard). Bounded so
# that guessing many names cannot grow memory; the oldest are forgotten first.
UNKNOWN_TRACKED_MAX = 10_000
MAX_TOTP_INPUT_CHARS = 16  # "123 456" with spaces, and some slack


def valid_username(name: str) -> bool:
    return isinstance(name, str) and bool(USERNAME_RE.match(name))


def lockout_policy(settings: Settings) -> LockoutPolicy:
    return LockoutPolicy(max_failures=settings.login_max_failures,
                         base_secs=settings.lockout_base_secs,
                         max_secs=settings.lockout_max_secs)


def lock_secs(failures: int, settings: Settings) -> int:
    """Seconds to lock after ``failures`` consecutive failures (0 = no lock).

    At ``login_max_failures`` failures: ``lockout_base_secs``; each further
    failure (possible once a lock has run out) doubles it, up to
    ``lockout_max_secs``.
    """
    return lockout_policy(settings).lock_secs(failures)


@dataclass(slots=True)
class _UnknownName:
    failures: int = 0
    locked_until: float | None = None


class _NotAdmitted(Exception):
    """The admission step refused the attempt (the account is locked)."""

    def __init__(self, attempt: LoginAttempt) -> None:
        super().__init__("locked")
        self.attempt = attempt


Admit = Callable[[], Awaitable[LoginAttempt]]


class LoginGuard:
    """The app-wide state of login. Create one in ``create_app`` and pass it to ``login``.

    - Runs argon2 in worker threads, at most ``concurrency`` at a time. A slot
      is held until the thread finishes, even if the request is cancelled.
    - Verifies against a dummy hash for unknown usernames, so the response
      time does not reveal which usernames exist.
    - Counts failures (and locks out) unknown usernames exactly like real
      ones, so ``locked_out`` does not reveal them either. Only a keyed hash
      of the name is kept, under a per-process random key.
    - ``verify`` takes an ``admit`` step (the lockout reservation) that runs
      after the request has its place in the waiting line and before any
      hashing: a request refused for a full line has counted nothing, and one
      the lock refuses has hashed nothing.
    """

    def __init__(
        self,
        profile: str,
        *,
        concurrency: int = HASH_CONCURRENCY,
        max_waiting: int = MAX_WAITING,
        unknown_tracked_max: int = UNKNOWN_TRACKED_MAX,
    ) -> None:
        if profile not in passwords.PROFILES:
            raise ValueError(f"unknown password profile {profile!r}")
        self.profile = profile
        self._sem = asyncio.Semaphore(concurrency)
        self._max_waiting = max_waiting
        self._waiting = 0
        self._dummy_hash: str | None = None
        self._name_key = secrets.token_bytes(32)
        self._unknown: OrderedDict[bytes, _UnknownName] = OrderedDict()
        self._unknown_max = unknown_tracked_max

    def __repr__(self) -> str:
        return f"LoginGuard(profile={self.profile!r})"

    async def _run(self, fn: Callable[..., T], *args: object, admit: Admit | None = None) -> T:
        if self._waiting >= self._max_waiting:
            raise RateLimited(info={"retry_after_secs": 1})
        self._waiting += 1
        try:
            if admit is not None:
                attempt = await admit()
                if not attempt.granted:
                    raise _NotAdmitted(attempt)
            await self._sem.acquire()
        finally:
            self._waiting -= 1
        task = asyncio.ensure_future(asyncio.to_thread(fn, *args))

        def done(t: asyncio.Future[T]) -> None:
            self._sem.release()
            if not t.cancelled():
                t.exception()  # retrieved, so an abandoned task logs no warning

        task.add_done_callback(done)
        # shield: a cancelled request stops waiting, the hash finishes and only
        # then frees its slot, so the memory bound holds.
        return await asyncio.shield(task)

    async def hash(self, password: str) -> str:
        return await self._run(passwords.hash_password, self.profile, password)

    async def verify(self, password_hash: str | None, password: str,
                     admit: Admit | None = None) -> bool:
        """Verify ``password``. ``None`` (unknown user): verify against a dummy, return False.

        ``admit`` runs first (see the class); if it refuses, nothing is hashed
        and ``_NotAdmitted`` carries its answer.
        """
        if password_hash is None:
            await self.warm_up()
            dummy = self._dummy_hash or ""
            await self._run(passwords.verify_password, self.profile, dummy, password,
                            admit=admit)
            return False
        return await self._run(passwords.verify_password, self.profile, password_hash, password,
                               admit=admit)

    async def warm_up(self) -> None:
        """Make the dummy hash now (at start-up) rather than on the first unknown name."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))

    def needs_rehash(self, password_hash: str) -> bool:
        return passwords.needs_rehash(self.profile, password_hash)

    def _name(self, username: str) -> bytes:
        return hashlib.blake2b(
            username.encode("utf-8", "replace")[:256], key=self._name_key, digest_size=16
        ).digest()

    def reserve_unknown(self, username: str, now: float, policy: LockoutPolicy) -> LoginAttempt:
        """``StaffStore.reserve_login_attempt`` for a name that does not exist.

        The same rule on the in-memory counters, in one step with no await:
        under asyncio nothing can come between the lock test and the count.
        """
        key = self._name(username)
        entry = self._unknown.pop(key, None) or _UnknownName()
        self._unknown[key] = entry  # now the most recently used
        while len(self._unknown) > self._unknown_max:
            self._unknown.popitem(last=False)
        if entry.locked_until is not None and entry.locked_until > now:
            return LoginAttempt(False, entry.failures, entry.locked_until)
        entry.failures += 1
        lock = policy.lock_secs(entry.failures)
        entry.locked_until = now + lock if lock else None
        return LoginAttempt(True, entry.failures, entry.locked_until)


def _normalise_username(username: object) -> str:
    if not isinstance(username, str) or len(username) > 256:
        return ""
    return username.strip().lower()


def _normalise_code(code: object) -> str:
    if not isinstance(code, str) or len(code) > MAX_TOTP_INPUT_CHARS:
        return ""
    return code.replace(" ", "")


async def login(
    username: str,
    password: str,
    totp_code: str,
    *,
    store: StaffStore,
    audit: AuditLog,
    clock: Clock,
    settings: Settings,
    guard: LoginGuard,
) -> StaffRecord:
    """Check password and TOTP; return the account, or raise BadCredentials/LockedOut.

    Raises ``RateLimited`` if too many logins are already waiting for a
    hashing slot (nothing is counted against the account then).
    """
    now = clock.now()
    policy = lockout_policy(settings)
    name = _normalise_username(username)
    if not isinstance(password, str):
        password = ""
    found = await store.get_by_username(name) if valid_username(name) else None
    if found is None:
        await _unknown_user(name, password, now=now, policy=policy, audit=audit, guard=guard)
    staff: StaffRecord = found
    granted = LoginAttempt(False, 0, None)

    async def admit() -> LoginAttempt:
        nonlocal granted
        granted = await store.reserve_login_attempt(staff.id, now, policy)
        return granted

    async def fail(action: str, reason: str) -> BadCredentials | LockedOut:
        # Already counted, and locked at the limit, when the attempt was admitted.
        lock = policy.lock_secs(granted.failures)
        if lock:
            # A concurrent login that succeeded meanwhile cleared count and
            # lock: then this attempt must not claim the account is locked.
            current = await store.get_by_id(staff.id)
            if current is None or current.locked_until is None:
                lock = 0
        if lock:
            await audit.record(staff.username, action, reason=reason,
                               failures=granted.failures, retry_after_secs=lock)
            return LockedOut(info={"retry_after_secs": lock})
        await audit.record(staff.username, action, reason=reason, failures=granted.failures)
        return BadCredentials()

    try:
        password_ok = await guard.verify(staff.password_hash, password, admit)
    except _NotAdmitted as refused:
        # Refused before hashing: a locked account costs no argon2 work.
        raise await _refused(staff.username, refused.attempt, now, audit) from None
    if not password_ok:
        raise await fail("login_failed", "password")
    # Checked only after the password, so a disabled account answers exactly
    # like a wrong password (and locks out the same way).
    if staff.disabled:
        raise await fail("login_failed", "disabled")

    code = _normalise_code(totp_code)
    seed = seal.unseal(settings.require_secrets().totp_key, staff.totp_seed_sealed)
    window = settings.totp_valid_window
    timecode = totp.verify(seed, code, now, staff.totp_last_timecode, window)
    if timecode is None:
        replayed = totp.verify(seed, code, now, None, window) is not None
        # A right password with a wrong code is its own action: the password
        # may be known to someone else, which an operator should notice.
        raise await fail("totp_failed", "replay" if replayed else "totp")
    # Success. Every admitted attempt was counted as a failure up front; the
    # store clears the count in the same statement that accepts the code.
    if not await store.accept_totp_timecode(staff.id, timecode):
        # A concurrent login won the same code first.
        raise await fail("totp_failed", "replay")

    if guard.needs_rehash(staff.password_hash):
        await store.set_password_hash(staff.id, await guard.hash(password))
    await audit.record(staff.username, "login_ok")
    fresh = await store.get_by_id(staff.id)
    return fresh if fresh is not None else staff


async def _refused(actor: str, attempt: LoginAttempt, now: float,
                   audit: AuditLog) -> BadCredentials | LockedOut:
    """The answer (and audit entry) for an attempt the lock refused."""
    if attempt.locked_until is None:  # the account is gone since it was read
        await audit.record(ACTOR_UNKNOWN, "login_failed", reason="unknown")
        return BadCredentials()
    retry = max(1, math.ceil(attempt.locked_until - now))
    await audit.record(actor, "login_failed", reason="locked", retry_after_secs=retry)
    return LockedOut(info={"retry_after_secs": retry})


async def _unknown_user(
    name: str,
    password: str,
    *,
    now: float,
    policy: LockoutPolicy,
    audit: AuditLog,
    guard: LoginGuard,
) -> NoReturn:
    """Answer a login for a name that does not exist exactly like a real failure:
    the same admission step, the same hash (against a dummy), the same answers.

    The name itself is never logged: a mistyped username is often a real name
    or a password typed into the wrong field.
    """
    granted = LoginAttempt(False, 0, None)

    async def admit() -> LoginAttempt:
        nonlocal granted
        granted = guard.reserve_unknown(name, now, policy)
        return granted

    try:
        await guard.verify(None, password, admit)
    except _NotAdmitted as refused:
        raise await _refused(ACTOR_UNKNOWN, refused.attempt, now, audit) from None
    lock = policy.lock_secs(granted.failures)
    if lock:
        await audit.record(
            ACTOR_UNKNOWN, "login_failed", reason="unknown", failures=granted.failures,
            retry_after_secs=lock,
        )
        raise LockedOut(info={"retry_after_secs": lock})
    await audit.record(ACTOR_UNKNOWN, "login_failed", reason="unknown", failures=granted.failures)
    raise BadCredentials()


# -- account management (CLI now, an admin page later) -----------------------


def check_account_fields(username: str, role: str, alias: str, capacity: int) -> None:
    """Raise ValueError naming the first problem with a new account's fields."""
    if not valid_username(username):
        raise ValueError(
            "username must be 2-64 characters: lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if username in FIXED_ACTORS:
        raise ValueError(f"username {username!r} is reserved: the audit log uses it for "
                         "entries that no staff member wrote")
    if role not in STAFF_ROLES:
        raise ValueError(f"role must be one of {', '.join(STAFF_ROLES)}")
    if not alias.strip() or len(alias) > MAX_ALIAS_CHARS or not alias.isprintable():
        raise ValueError(f"alias must be 1-{MAX_ALIAS_CHARS} printable characters")
    if alias.strip().casefold() == username.casefold():
        # Youths see the alias; the username is often the person's real name.
        raise ValueError("alias must differ from the username")
    if not 0 <= capacity <= MAX_CAPACITY:
        raise ValueError(f"capacity must be between 0 and {MAX_CAPACITY}")


def parse_languages(text: str, allowed: Sequence[str]) -> tuple[str, ...]:
    """``"sv,en,ar"`` → ``("sv", "en", "ar")``: codes from the chat-language list
    (``service.profile.languages``), each once, in the order given; ``""`` is
    none. Raises ValueError naming the first code that is not in the list."""
    codes = tuple(code.strip() for code in text.split(",") if code.strip())
    for code in codes:
        if code not in allowed:
            raise ValueError(f"unknown language {code[:16]!r}: the chat-language list "
                             f"(service.profile.languages) has {', '.join(allowed)}")
    if len(set(codes)) != len(codes):
        raise ValueError("a language is named twice")
    if len(codes) > MAX_LANGUAGES:
        raise ValueError(f"at most {MAX_LANGUAGES} languages")
    return codes


def check_password(password: str) -> None:
    """Raise ValueError if ``password`` is too short or too long (never echoing it)."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"password must be at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"password must be at most {MAX_PASSWORD_CHARS} characters")


@dataclass(frozen=True, slots=True)
class NewAccount:
    staff: StaffRecord
    totp_seed: str  # shown once to provision the authenticator app

    def __repr__(self) -> str:
        return f"NewAccount(staff={self.staff!r})"


async def add_account(
    username: str,
    password: str,
    *,
    role: str,
    alias: str,
    capacity: int,
    actor: str,
    store: StaffStore,
    audit: AuditLog,
    clock: Clock,
    settings: Settings,
    guard: LoginGuard,
) -> NewAccount:
    """Create an account with a fresh TOTP seed. Raises ValueError or AccountExists."""
    check_account_fields(username, role, alias, capacity)
    check_password(password)
    seed = totp.new_seed()
    record = await store.add_staff(
        NewStaff(
            username=username,
            password_hash=await guard.hash(password),
            totp_seed_sealed=seal.seal(settings.require_secrets().totp_key, seed),
            role=role,
            alias=alias.strip(),
            capacity=capacity,
            created_at=utc_iso(clock.now()),
        )
    )
    await audit.record(actor, "account_added", target=username, role=role, capacity=capacity)
    return NewAccount(record, seed)


async def set_account_disabled(
    username: str, disabled: bool, *, actor: str, store: StaffStore, audit: AuditLog
) -> StaffRecord:
    """Disable or enable an account. Raises UnknownAccount.

    The running server's sessions for the account are not in this process:
    the server must re-check ``disabled`` (``SessionStore.revoke_staff``)
    when it learns of the change, e.g. on the next staff connect.
    """
    staff = await store.get_by_username(username)
    if staff is None:
        raise UnknownAccount()
    await store.set_disabled(staff.id, disabled)
    await audit.record(
        actor, "account_disabled" if disabled else "account_enabled", target=username
    )
    fresh = await store.get_by_id(staff.id)
    return fresh if fresh is not None else staff


async def set_account_languages(
    username: str, languages: tuple[str, ...], *, actor: str, store: StaffStore,
    audit: AuditLog,
) -> StaffRecord:
    """Set the languages an account speaks (checked by ``parse_languages``).
    Raises UnknownAccount. A running server uses them from the counsellor's
    next staff action that reads the account (take next does)."""
    staff = await store.get_by_username(username)
    if staff is None:
        raise UnknownAccount()
    await store.set_languages(staff.id, languages)
    await audit.record(actor, "account_languages", target=username,
                       languages="+".join(languages))
    fresh = await store.get_by_id(staff.id)
    return fresh if fresh is not None else staff


async def unlock_account(
    username: str, *, actor: str, store: StaffStore, audit: AuditLog
) -> None:
    """Clear an account's failure count and lockout. Raises UnknownAccount."""
    staff = await store.get_by_username(username)
    if staff is None:
        raise UnknownAccount()
    await store.reset_failures(staff.id)
    await audit.record(actor, "account_unlocked", target=username)
