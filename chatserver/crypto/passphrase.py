"""Return passphrases: five words from the EFF long list, and the keys derived
from them (docs/design/returning.md; docs/security-design.md, "Return passphrases").

One Argon2id derivation per passphrase gives a 32-byte master; two BLAKE2b
personalisations of it give the *lookup key* (stored as the row's primary key)
and the *sealing key* (never stored) that seals the counsellor id. A leaked
database therefore holds lookup keys and sealed ids but nothing that opens
them without the passphrase.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import secrets
import struct
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import nacl.exceptions
import nacl.secret
from argon2.low_level import Type, hash_secret_raw

from chatserver.errors import BadPassphrase, RateLimited

WORD_COUNT = 5
EFF_LONG_SIZE = 7776  # the list as published; words with a hyphen are dropped (see below)
MAX_INPUT_CHARS = 200  # longer input is refused before any hashing
LOOKUP_SALT_LABEL = b"return/lookup/v1"


@dataclass(frozen=True)
class KdfProfile:
    time_cost: int
    memory_kib: int
    parallelism: int


# t=3, m=64 MiB, p=1: ~0.2 s on a 2-core machine, for hit and miss alike
# (docs/security-design.md, "Return passphrases").
PROFILES = {
    "return_v1": KdfProfile(time_cost=3, memory_kib=64 * 1024, parallelism=1),
    # Tests only; Settings refuses it outside environment "test".
    "cheapest_for_tests": KdfProfile(time_cost=1, memory_kib=8, parallelism=1),
}


class WordListError(Exception):
    """The shipped word list is not what the design relies on."""


@cache
def words() -> tuple[str, ...]:
    """The EFF long list shipped in xkcdpass, checked once.

    Checks: 7 776 entries, ASCII lower-case, prefix-free. The four entries with
    a hyphen (e.g. "t-shirt") are dropped, because normalisation turns hyphens
    into spaces; 7 772 words × 5 = 64.6 bits.
    """
    text = resources.files("xkcdpass").joinpath("static/eff-long").read_text("ascii")
    raw = text.split()
    if len(raw) != EFF_LONG_SIZE or len(set(raw)) != EFF_LONG_SIZE:
        raise WordListError("the EFF long list does not have 7776 distinct words")
    if not all(w.isascii() and w == w.lower() for w in raw):
        raise WordListError("the EFF long list is not ASCII lower-case")
    ordered = sorted(raw)
    if any(b.startswith(a) for a, b in itertools.pairwise(ordered)):
        raise WordListError("the EFF long list is not prefix-free")
    return tuple(w for w in raw if w.isalpha())


def generate() -> str:
    pool = words()
    return " ".join(secrets.choice(pool) for _ in range(WORD_COUNT))


def normalise(text: str) -> str:
    """NFKC, lower-case, hyphens and runs of whitespace become one space."""
    if not isinstance(text, str) or len(text) > MAX_INPUT_CHARS:
        raise BadPassphrase()
    folded = unicodedata.normalize("NFKC", text).lower().replace("-", " ")
    cleaned = " ".join(folded.split())
    if not cleaned:
        raise BadPassphrase()
    return cleaned


@dataclass(frozen=True)
class Derived:
    lookup: bytes = field(repr=False)
    seal_key: bytes = field(repr=False)


def derive(normalised: str, pepper: bytes, profile: KdfProfile) -> Derived:
    # The salt is fixed per deployment (a lookup key must be recomputable from
    # the passphrase alone) and secret (it comes from the pepper, not the DB).
    salt = hmac.new(pepper, LOOKUP_SALT_LABEL, hashlib.sha256).digest()[:16]
    master = hash_secret_raw(normalised.encode("utf-8"), salt, time_cost=profile.time_cost,
                             memory_cost=profile.memory_kib, parallelism=profile.parallelism,
                             hash_len=32, type=Type.ID)
    lookup = hashlib.blake2b(master, digest_size=32, person=b"return-lookup").digest()
    seal_key = hashlib.blake2b(master, digest_size=32, person=b"return-seal").digest()
    return Derived(lookup, seal_key)


def seal_staff_id(seal_key: bytes, staff_id: int) -> bytes:
    return bytes(nacl.secret.SecretBox(seal_key).encrypt(struct.pack(">Q", staff_id)))


def open_staff_id(seal_key: bytes, sealed: bytes) -> int | None:
    try:
        raw = nacl.secret.SecretBox(seal_key).decrypt(sealed)
    except nacl.exceptions.CryptoError:
        return None
    return int(struct.unpack(">Q", raw)[0]) if len(raw) == 8 else None


class PassphraseKdf:
    """Runs Argon2id off the event loop, at most ``concurrency`` at once, and
    refuses (``rate_limited``) beyond ``max_waiting`` queued derivations, so
    unauthenticated hashing cannot exhaust memory or stall the chat."""

    def __init__(self, profile: str, pepper: bytes, *, concurrency: int = 2,
                 max_waiting: int = 16) -> None:
        self._profile = PROFILES[profile]
        self._pepper = pepper
        self._sem = asyncio.Semaphore(concurrency)
        self._max_waiting = max_waiting
        self._waiting = 0

    def __repr__(self) -> str:
        return "PassphraseKdf()"

    async def derive(self, text: str) -> Derived:
        normalised = normalise(text)  # refuses oversized input before hashing
        if self._waiting >= self._max_waiting:
            raise RateLimited({"retry_after_secs": 5})
        self._waiting += 1
        try:
            async with self._sem:
                return await asyncio.to_thread(derive, normalised, self._pepper, self._profile)
        finally:
            self._waiting -= 1
