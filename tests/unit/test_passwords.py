"""argon2id password hashing under named profiles (chatserver.crypto.passwords)."""

from __future__ import annotations

import pytest

from chatserver.crypto import passwords

CHEAP = "cheapest_for_tests"
PRODUCTION = "rfc9106_low_memory"
PW = "correct horse battery staple"


def test_hash_is_argon2id_and_verifies() -> None:
    h = passwords.hash_password(CHEAP, PW)
    assert h.startswith("$argon2id$")
    assert PW not in h
    assert passwords.verify_password(CHEAP, h, PW)


def test_each_hash_is_salted() -> None:
    assert passwords.hash_password(CHEAP, PW) != passwords.hash_password(CHEAP, PW)


@pytest.mark.parametrize("attempt", ["", "correct horse battery stapl", PW + " ", PW.upper()])
def test_wrong_password_is_false(attempt: str) -> None:
    h = passwords.hash_password(CHEAP, PW)
    assert passwords.verify_password(CHEAP, h, attempt) is False


@pytest.mark.parametrize("bad_hash", ["", "not a hash", "$argon2id$v=19$m=8,t=1,p=1$AAAA$BBBB",
                                      "$2b$12$abcdefghijklmnopqrstuv"])
def test_invalid_hash_never_raises(bad_hash: str) -> None:
    assert passwords.verify_password(CHEAP, bad_hash, PW) is False
    assert passwords.needs_rehash(CHEAP, bad_hash) is True


def test_overlong_password_is_refused_before_hashing() -> None:
    long_pw = "x" * (passwords.MAX_PASSWORD_CHARS + 1)
    with pytest.raises(ValueError, match="longer than") as info:
        passwords.hash_password(CHEAP, long_pw)
    assert long_pw not in str(info.value)
    h = passwords.hash_password(CHEAP, "x" * passwords.MAX_PASSWORD_CHARS)
    assert passwords.verify_password(CHEAP, h, "x" * passwords.MAX_PASSWORD_CHARS)
    assert passwords.verify_password(CHEAP, h, long_pw) is False


def test_needs_rehash_when_profile_changes() -> None:
    cheap = passwords.hash_password(CHEAP, PW)
    assert passwords.needs_rehash(CHEAP, cheap) is False
    assert passwords.needs_rehash(PRODUCTION, cheap) is True


def test_production_profile_parameters() -> None:
    # RFC 9106 low-memory: t=3, m=64 MiB, p=4. One real hash (~0.1-0.3 s).
    h = passwords.hash_password(PRODUCTION, PW)
    assert "$m=65536,t=3,p=4$" in h
    assert passwords.verify_password(PRODUCTION, h, PW)
    assert passwords.needs_rehash(PRODUCTION, h) is False
    assert passwords.needs_rehash(CHEAP, h) is True


def test_unknown_profile_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown password profile"):
        passwords.hash_password("fast", PW)
    with pytest.raises(ValueError, match="unknown password profile"):
        passwords.verify_password("fast", "x", PW)
