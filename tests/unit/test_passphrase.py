"""Return passphrases (chatserver/crypto/passphrase.py; docs/security-design.md,
"Return passphrases"): the word list, normalisation, the two derived keys, the
sealed counsellor id and the bounded, off-loop KDF."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import math
import threading
from pathlib import Path
from typing import Any

import pytest

from chatserver.crypto import passphrase
from chatserver.errors import BadPassphrase, RateLimited

PEPPER = bytes(range(32))
CHEAP = passphrase.PROFILES["cheapest_for_tests"]


# ------------------------------------------------------------------ word lists

REPO = Path(__file__).resolve().parents[2]


def _blocklist(language: str) -> tuple[set[str], tuple[str, ...]]:
    """scripts/wordlists/<language>-blocklist.txt, read as the generator reads it."""
    text = (REPO / "scripts" / "wordlists" / f"{language}-blocklist.txt").read_text("utf-8")
    entries = {w for line in text.splitlines() for w in line.split("#", 1)[0].split()}
    return ({w for w in entries if not w.endswith("*")},
            tuple(w[:-1] for w in entries if w.endswith("*")))


@pytest.mark.parametrize("language", passphrase.LANGUAGES)
def test_each_shipped_list_has_2048_distinct_short_words_in_normal_form(language: str) -> None:
    words = passphrase.words(language)
    assert len(words) == passphrase.LIST_SIZE == 2048
    assert len(set(words)) == len(words)
    assert all(3 <= len(w) <= 8 and w.isalpha() and passphrase.normalise(w) == w for w in words)
    # No two alike at a glance: distinct first four letters, none the start of another
    assert len({w[:4] for w in words}) == len(words)
    ordered = sorted(words)
    assert not any(b.startswith(a) for a, b in itertools.pairwise(ordered))


def test_swedish_words_keep_their_letters_and_english_ones_are_plain_ascii() -> None:
    swedish = passphrase.words("sv")
    assert sum(1 for w in swedish if set(w) & set("åäö")) > 200
    assert set("".join(swedish)) <= set("abcdefghijklmnopqrstuvwxyzåäö")
    assert set("".join(passphrase.words("en"))) <= set("abcdefghijklmnopqrstuvwxyz")


def test_the_lists_share_no_word_so_a_code_has_one_language() -> None:
    swedish, english = set(passphrase.words("sv")), set(passphrase.words("en"))
    assert not swedish & english
    # ...and no word is the other language's word with an ending (album / albums)
    assert not [e for e in english if any(e.startswith(s) or s.startswith(e) for s in swedish)]
    passphrase.check_word_lists()  # what the server runs at start-up


@pytest.mark.parametrize("language", passphrase.LANGUAGES)
def test_six_words_carry_at_least_60_bits(language: str) -> None:
    bits = passphrase.WORD_COUNT * math.log2(len(passphrase.words(language)))
    assert bits >= 60
    assert bits == passphrase.entropy_bits() == 66.0


@pytest.mark.parametrize("language", passphrase.LANGUAGES)
def test_no_shipped_word_is_on_the_reviewed_blocklist(language: str) -> None:
    blocked, stems = _blocklist(language)
    words = passphrase.words(language)
    assert not [w for w in words if w in blocked or w.startswith(stems)]


def test_the_blocklists_hold_what_a_code_for_these_youths_must_never_say() -> None:
    # A code is written down or learnt by heart by a youth someone may be
    # watching: no plea, no family, no violence, no body, no religion.
    for language, must in (("sv", ["polisen", "hjälp", "mamma", "bröllop", "död", "kniv",
                                   "kropp", "gud", "knark", "idiot", "heder"]),
                           ("en", ["police", "help", "mother", "wedding", "death", "knife",
                                   "body", "god", "drug", "idiot", "honor"])):
        blocked, stems = _blocklist(language)
        assert all(w in blocked or w.startswith(stems) for w in must), language
        assert not set(must) & set(passphrase.words(language))


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("make_wordlists",
                                                  REPO / "scripts" / "make_wordlists.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("language", passphrase.LANGUAGES)
def test_no_two_words_are_forms_of_one_word(language: str) -> None:
    stem = _generator().stem
    assert stem("hundar", "sv") == stem("hund", "sv") and stem("bilen", "sv") == "bil"
    assert stem("cities", "en") == stem("city", "en")
    words = passphrase.words(language)
    assert len({stem(w, language) for w in words}) == len(words)


def test_only_the_generator_needs_wordfreq() -> None:
    script = (REPO / "scripts" / "make_wordlists.py").read_text("utf-8")
    assert "from wordfreq import" in script  # only the generator imports wordfreq
    server = "\n".join(p.read_text("utf-8") for p in (REPO / "chatserver").rglob("*.py"))
    assert "wordfreq" not in server


@pytest.mark.parametrize(("page", "language"), [
    ("sv", "sv"), ("en", "en"), ("ar", "en"), ("fa", "en"), (None, "en"), ("xx", "en")])
def test_generate_draws_six_words_from_the_page_languages_list(page: str | None,
                                                               language: str) -> None:
    assert passphrase.language_for(page) == language
    pool = set(passphrase.words(language))
    drawn = [passphrase.generate(page) for _ in range(40)]
    for text in drawn:
        parts = text.split(" ")
        assert len(parts) == passphrase.WORD_COUNT == 6 and set(parts) <= pool
        assert passphrase.normalise(text) == text  # already in normal form
    assert len(set(drawn)) == 40


def _fake_lists(monkeypatch: pytest.MonkeyPatch, lists: dict[str, list[str]]) -> None:
    monkeypatch.setattr(passphrase, "_read", lambda language: "\n".join(lists[language]))
    passphrase.words.cache_clear()


def _base(first: str) -> list[str]:
    """2048 distinct five-letter words, unique in their first four letters."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = [f"{first}{letters[i // 676 % 26]}{letters[i // 26 % 26]}{letters[i % 26]}x"
           for i in range(passphrase.LIST_SIZE)]
    assert len({w[:4] for w in out}) == len(out)
    return out


@pytest.mark.parametrize("problem", ["short", "duplicate", "upper", "prefix", "first_four",
                                     "too_long", "digit", "two_letters"])
def test_a_word_list_that_breaks_the_assumptions_is_refused(
        monkeypatch: pytest.MonkeyPatch, problem: str) -> None:
    base = _base("s")
    bad = {"short": base[:-1], "duplicate": [*base[:-1], base[0]],
           "upper": [base[0].upper(), *base[1:]], "prefix": [*base[:-1], base[0] + "s"],
           "first_four": [*base[:-1], base[0][:4] + "q"], "too_long": [*base[:-1], "abcdefghi"],
           "digit": [*base[:-1], "ab1cd"], "two_letters": [*base[:-1], "zz"]}[problem]
    try:
        _fake_lists(monkeypatch, {"sv": bad, "en": _base("e")})
        with pytest.raises(passphrase.WordListError):
            passphrase.words("sv")
        with pytest.raises(passphrase.WordListError):
            passphrase.check_word_lists()
        _fake_lists(monkeypatch, {"sv": base, "en": _base("e")})
        assert len(passphrase.words("sv")) == passphrase.LIST_SIZE  # the good one passes
        passphrase.check_word_lists()
    finally:
        monkeypatch.undo()
        passphrase.words.cache_clear()
    assert len(passphrase.words("sv")) == 2048


def test_lists_that_share_a_word_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    swedish, english = _base("s"), _base("e")
    try:
        _fake_lists(monkeypatch, {"sv": swedish, "en": [*english[:-1], swedish[7]]})
        assert len(passphrase.words("en")) == 2048  # each list alone is fine
        with pytest.raises(passphrase.WordListError):
            passphrase.check_word_lists()
    finally:
        monkeypatch.undo()
        passphrase.words.cache_clear()
    with pytest.raises(passphrase.WordListError):
        passphrase.words("ar")  # no list: language_for picks the fallback instead


# -------------------------------------------------------------- normalisation

SV = "häst båt snö äpple moln sten"


@pytest.mark.parametrize("typed", [
    "häst båt snö äpple moln sten",
    "Häst BÅT snö Äpple MOLN sten",  # case, also of å/ä/ö
    "häst-båt-snö-äpple-moln-sten",  # hyphens
    "  häst \t båt\n\nsnö   äpple  moln sten ",  # whitespace runs, ends
    "häst\u00a0båt\u3000snö äpple moln sten",  # NBSP and ideographic space (NFKC)
    "ｈäst båt snö äpple moln sten",  # a fullwidth letter (NFKC)
    "ha\u0308st ba\u030at sno\u0308 a\u0308pple moln sten",  # decomposed å/ä/ö (NFKC)
    "häst, båt. snö; äpple – moln / sten!",  # punctuation and a dash separate words
    "1. häst 2. båt 3. snö 4. äpple 5. moln 6. sten",  # a numbered list, as written down
])
def test_normalise_nfkc_casefold_and_any_separator(typed: str) -> None:
    assert passphrase.normalise(typed) == SV


def test_normalise_keeps_the_swedish_letters() -> None:
    # "hast" is not "häst": a code is what was shown, å/ä/ö included
    assert passphrase.normalise("hast bat sno") == "hast bat sno"
    assert passphrase.normalise("HÄST") == "häst" != passphrase.normalise("hast")
    assert passphrase.normalise("able ACID aged") == "able acid aged"  # older English codes


@pytest.mark.parametrize("bad", ["", "   ", "-- -", "123 456", "a" * 201, None, 12345,
                                 b"able acid"])
def test_normalise_refuses_empty_oversized_and_non_text(bad: Any) -> None:
    with pytest.raises(BadPassphrase):
        passphrase.normalise(bad)


def test_normalise_accepts_exactly_the_cap() -> None:
    assert passphrase.normalise("a" * passphrase.MAX_INPUT_CHARS) == "a" * 200


def test_the_key_depends_on_the_words_only_never_on_a_language() -> None:
    # One derivation per redemption, whatever the page's language: the same
    # words typed any way give the same keys, and another spelling does not.
    typed = passphrase.derive(passphrase.normalise("HÄST-båt snö, äpple moln sten"),
                              PEPPER, CHEAP)
    shown = passphrase.derive(SV, PEPPER, CHEAP)
    ascii_only = passphrase.derive(passphrase.normalise("hast bat sno apple moln sten"),
                                   PEPPER, CHEAP)
    assert typed.lookup == shown.lookup and typed.seal_key == shown.seal_key
    assert ascii_only.lookup != shown.lookup


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
