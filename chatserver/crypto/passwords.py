"""Staff password hashing with argon2id (argon2-cffi), under named profiles.

Design: docs/design/staff-auth.md. Profiles are named so that configuration
picks one by name and cannot hand-tune parameters; ``Settings`` refuses the
cheap profile outside the "test" environment.
"""

from __future__ import annotations

from types import MappingProxyType

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

# Passwords longer than this are refused before hashing: login input is
# unauthenticated, and argon2 hashes its whole input. 1024 characters is far
# above any passphrase a person types and far below anything costly.
MAX_PASSWORD_CHARS = 1024

PROFILES = MappingProxyType(
    {
        # RFC 9106 §4 second recommended option: t=3, m=64 MiB, p=4. Memory
        # bounded so that two concurrent logins fit a small node.
        "rfc9106_low_memory": PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY),
        # argon2-cffi's own "testing only" profile (m=8 KiB, t=1): fast tests.
        "cheapest_for_tests": PasswordHasher.from_parameters(profiles.CHEAPEST),
    }
)


def _hasher(profile: str) -> PasswordHasher:
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(f"unknown password profile {profile!r}") from None


def hash_password(profile: str, password: str) -> str:
    """An argon2id PHC string for ``password``. Raises ValueError if it is too long."""
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"password longer than {MAX_PASSWORD_CHARS} characters")
    return _hasher(profile).hash(password)


def verify_password(profile: str, password_hash: str, password: str) -> bool:
    """True if ``password`` matches. Never raises for a mismatch or a bad hash."""
    hasher = _hasher(profile)
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        # VerifyMismatchError is a VerificationError; a corrupt stored hash is
        # treated as a failed login, never as a crash that says more.
        return False


def needs_rehash(profile: str, password_hash: str) -> bool:
    """True if the hash was made with other parameters than ``profile`` (or is unreadable)."""
    try:
        return _hasher(profile).check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True
