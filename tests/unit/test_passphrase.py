"""Return passphrases (chatserver/crypto/passphrase.py; docs/security-design.md,
"Return passphrases"): the word list, normalisation, the two derived keys, the
sealed counsellor id and the bounded, off-loop KDF."""

from __future__ import annotations

import asyncio
import itertools
import threading
from pathlib import Path
from typing import Any

import pytest

from chatserver.crypto import passphrase
from chatserver.errors import BadPassphrase, RateLimited

PEPPER = bytes(range(32))
CHEAP = passphrase.PROFILES["cheapest_for_tests"]


# ------------------------------------------------------------------ word list


def test_shipped_word_list_is_the_checked_eff_long_list() -> None:
    words = passphrase.words()
    assert len(words) == 7772  # 7 776 minus the four with a hyphen
    assert len(set(words)) == len(words)
    assert all(w.isascii() and w.isalpha() and w == w.lower() for w in words)
    ordered = sorted(words)
    assert not any(b.startswith(a) for a, b in itertools.pairwise(ordered))  # prefix-free


def test_generate_draws_five_list_words() -> None:
    pool = set(passphrase.words())
    drawn = [passphrase.generate() for _ in range(50)]
    for text in drawn:
        parts = text.split(" ")
        assert len(parts) == passphrase.WORD_COUNT == 5 and set(parts) <= pool
        assert passphrase.normalise(text) == text  # already in normal form
    assert len(set(drawn)) == 50


def _fake_list(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, words: list[str]) -> None:
    static = tmp_path / "static"
    static.mkdir(exist_ok=True)
    (static / "eff-long").write_text("\n".join(words), encoding="ascii")
    monkeypatch.setattr(passphrase.resources, "files", lambda _pkg: tmp_path)
    passphrase.words.cache_clear()


@pytest.mark.parametrize("problem", ["short", "duplicate", "upper", "prefix"])
def test_a_word_list_that_breaks_the_assumptions_is_refused(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, problem: str) -> None:
    base = [f"w{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}{chr(97 + i // 676)}x"
            for i in range(passphrase.EFF_LONG_SIZE)]
    assert len(set(base)) == passphrase.EFF_LONG_SIZE
    bad = {"short": base[:-1], "duplicate": [*base[:-1], base[0]],
           "upper": [base[0].upper(), *base[1:]], "prefix": [*base[:-1], base[0] + "s"]}[problem]
    try:
        _fake_list(monkeypatch, tmp_path, bad)
        with pytest.raises(passphrase.WordListError):
            passphrase.words()
        _fake_list(monkeypatch, tmp_path, base)
        assert len(passphrase.words()) == passphrase.EFF_LONG_SIZE  # the good one passes
    finally:
        monkeypatch.undo()
        passphrase.words.cache_clear()
    assert len(passphrase.words()) == 7772


# -------------------------------------------------------------- normalisation


@pytest.mark.parametrize("typed", [
    "able acid aged also area",
    "Able ACID aged Also AREA",  # case
    "able-acid-aged-also-area",  # hyphens
    "  able \t acid\n\naged   also  area ",  # whitespace runs, ends
    "able\u00a0acid\u3000aged also area",  # NBSP and ideographic space (NFKC)
    "ＡＢＬＥ acid aged also area",  # fullwidth letters (NFKC)
    "able - acid -- aged also area",  # hyphens next to spaces
])
def test_normalise_nfkc_case_hyphens_whitespace(typed: str) -> None:
    assert passphrase.normalise(typed) == "able acid aged also area"


@pytest.mark.parametrize("bad", ["", "   ", "-- -", "a" * 201, None, 12345, b"able acid"])
def test_normalise_refuses_empty_oversized_and_non_text(bad: Any) -> None:
    with pytest.raises(BadPassphrase):
        passphrase.normalise(bad)


def test_normalise_accepts_exactly_the_cap() -> None:
    assert passphrase.normalise("a" * passphrase.MAX_INPUT_CHARS) == "a" * 200


# ------------------------------------------------------------------ derivation


def test_derive_is_deterministic_and_gives_two_different_keys() -> None:
    one = passphrase.derive("able acid aged also area", PEPPER, CHEAP)
    two = passphrase.derive("able acid aged also area", PEPPER, CHEAP)
    assert (one.lookup, one.seal_key) == (two.lookup, two.seal_key)
    assert len(one.lookup) == len(one.seal_key) == 32
    assert one.lookup != one.seal_key  # the stored key does not open the seal
    other_words = passphrase.derive("able acid aged also arena", PEPPER, CHEAP)
    other_pepper = passphrase.derive("able acid aged also area", bytes(32), CHEAP)
    assert len({one.lookup, other_words.lookup, other_pepper.lookup}) == 3
    assert repr(one) == "Derived()"  # neither key in a repr


def test_seal_and_open_the_counsellor_id() -> None:
    keys = passphrase.derive("able acid aged also area", PEPPER, CHEAP)
    sealed = passphrase.seal_staff_id(keys.seal_key, 4711)
    assert b"4711" not in sealed and (4711).to_bytes(8, "big") not in sealed
    assert passphrase.open_staff_id(keys.seal_key, sealed) == 4711
    assert passphrase.seal_staff_id(keys.seal_key, 4711) != sealed  # fresh nonce
    # The lookup key (in the database) and another passphrase's key cannot open it
    other = passphrase.derive("able acid aged also arena", PEPPER, CHEAP)
    assert passphrase.open_staff_id(keys.lookup, sealed) is None
    assert passphrase.open_staff_id(other.seal_key, sealed) is None
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    assert passphrase.open_staff_id(keys.seal_key, tampered) is None


# ---------------------------------------------------------------- PassphraseKdf


async def test_kdf_refuses_oversized_input_before_hashing(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    calls: list[str] = []
    monkeypatch.setattr(passphrase, "derive", lambda text, *_: calls.append(text))
    kdf = passphrase.PassphraseKdf("cheapest_for_tests", PEPPER)
    for bad in ("x" * 201, "", "   "):
        with pytest.raises(BadPassphrase):
            await kdf.derive(bad)
    assert calls == []
    assert repr(kdf) == "PassphraseKdf()"  # no pepper in a repr


async def test_kdf_matches_derive_and_runs_off_the_loop(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    kdf = passphrase.PassphraseKdf("cheapest_for_tests", PEPPER)
    threads: list[int] = []
    real = passphrase.derive

    def spy(*args: Any) -> passphrase.Derived:
        threads.append(threading.get_ident())
        return real(*args)

    monkeypatch.setattr(passphrase, "derive", spy)
    got = await kdf.derive("Able-Acid aged also  AREA")  # normalised first
    want = real("able acid aged also area", PEPPER, CHEAP)
    assert (got.lookup, got.seal_key) == (want.lookup, want.seal_key)
    assert threads and threads[0] != threading.get_ident()


async def test_kdf_refuses_beyond_max_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    started = threading.Semaphore(0)

    def slow(*_: Any) -> passphrase.Derived:
        started.release()
        gate.wait(5)
        return passphrase.Derived(b"l" * 32, b"s" * 32)

    monkeypatch.setattr(passphrase, "derive", slow)
    kdf = passphrase.PassphraseKdf("cheapest_for_tests", PEPPER, concurrency=1,
                                   max_waiting=2)
    held = [asyncio.create_task(kdf.derive("able acid")) for _ in range(2)]
    await asyncio.sleep(0.05)  # both are in: one hashing, one queued behind the semaphore
    try:
        with pytest.raises(RateLimited) as refused:
            await kdf.derive("able acid")
        assert refused.value.info["retry_after_secs"] > 0
    finally:
        gate.set()
    results = await asyncio.gather(*held)
    assert all(r.lookup == b"l" * 32 for r in results)
    # Room again once they finished
    assert (await kdf.derive("able acid")).lookup == b"l" * 32
