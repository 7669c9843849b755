"""TOTP with the replay rule (chatserver.crypto.totp) and seeds sealed at rest
(chatserver.crypto.seal)."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlparse

import pytest

from chatserver.crypto import seal, totp

NOW = 1_800_000_000.0  # FakeClock's default start
STEP = totp.INTERVAL_SECS


@pytest.fixture
def seed() -> str:
    return totp.new_seed()


def test_new_seed_is_160_bits_of_base32() -> None:
    a, b = totp.new_seed(), totp.new_seed()
    assert len(a) == 32 and set(a) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert a != b


def test_provisioning_uri(seed: str) -> None:
    uri = totp.provisioning_uri(seed, "anna.k", "Centre")
    parsed = urlparse(uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    query = parse_qs(parsed.query)
    assert query["secret"] == [seed]
    assert query["issuer"] == ["Centre"]
    assert query.get("digits", ["6"]) == ["6"]
    assert query.get("period", ["30"]) == ["30"]


def test_current_code_returns_its_timecode(seed: str) -> None:
    code = totp.code_at(seed, NOW)
    assert totp.verify(seed, code, NOW, None, 1) == int(NOW // STEP)


def test_replay_of_the_same_code_is_refused(seed: str) -> None:
    code = totp.code_at(seed, NOW)
    accepted = totp.verify(seed, code, NOW, None, 1)
    assert accepted is not None
    # Given the timecode was stored, the same code is refused for the whole window.
    assert totp.verify(seed, code, NOW, accepted, 1) is None
    assert totp.verify(seed, code, NOW + STEP, accepted, 1) is None
    # The next step's code is accepted.
    nxt = totp.code_at(seed, NOW + STEP)
    assert totp.verify(seed, nxt, NOW + STEP, accepted, 1) == accepted + 1


def test_older_code_refused_after_a_newer_one_was_accepted(seed: str) -> None:
    current = int(NOW // STEP)
    previous = totp.code_at(seed, NOW - STEP)
    # Valid in the window on its own ...
    assert totp.verify(seed, previous, NOW, None, 1) == current - 1
    # ... but not once the current step was used.
    assert totp.verify(seed, previous, NOW, current, 1) is None


def test_window(seed: str) -> None:
    current = int(NOW // STEP)
    prev_code = totp.code_at(seed, NOW - STEP)
    next_code = totp.code_at(seed, NOW + STEP)
    old_code = totp.code_at(seed, NOW - 2 * STEP)
    assert totp.verify(seed, prev_code, NOW, None, 1) == current - 1
    assert totp.verify(seed, next_code, NOW, None, 1) == current + 1
    assert totp.verify(seed, prev_code, NOW, None, 0) is None
    assert totp.verify(seed, next_code, NOW, None, 0) is None
    assert totp.verify(seed, old_code, NOW, None, 1) is None


def test_window_above_one_is_refused(seed: str) -> None:
    with pytest.raises(ValueError):
        totp.verify(seed, totp.code_at(seed, NOW), NOW, None, 2)


def test_wrong_code(seed: str) -> None:
    code = totp.code_at(seed, NOW)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert totp.verify(seed, wrong, NOW, None, 1) is None
    assert totp.verify(totp.new_seed(), code, NOW, None, 1) is None


def test_codes_must_be_exactly_six_ascii_digits(seed: str) -> None:
    code = totp.code_at(seed, NOW)
    fullwidth = "".join(chr(ord(c) - ord("0") + ord("０")) for c in code)
    for bad in [code[:5], code + "0", "0" + code, f" {code}", code[:5] + "a", fullwidth, ""]:
        assert not totp.well_formed(bad)
        assert totp.verify(seed, bad, NOW, None, 1) is None, bad


# -- sealing seeds at rest ----------------------------------------------------


def test_seal_round_trip_hides_the_seed(seed: str) -> None:
    key = secrets.token_bytes(32)
    sealed = seal.seal(key, seed)
    assert seed.encode() not in sealed
    assert seal.seal(key, seed) != sealed  # random nonce each time
    assert seal.unseal(key, sealed) == seed


def test_tampered_or_foreign_seal_is_refused(seed: str) -> None:
    key = secrets.token_bytes(32)
    sealed = bytearray(seal.seal(key, seed))
    with pytest.raises(seal.SealBroken):
        seal.unseal(secrets.token_bytes(32), bytes(sealed))
    sealed[-1] ^= 1
    with pytest.raises(seal.SealBroken) as info:
        seal.unseal(key, bytes(sealed))
    assert seed not in str(info.value)
    with pytest.raises(seal.SealBroken):
        seal.unseal(key, b"short")


def test_seal_key_must_be_32_bytes(seed: str) -> None:
    with pytest.raises(ValueError):
        seal.seal(b"k" * 16, seed)
