"""Return passphrases: issue at the end of a conversation, redeem once on return.

Design: docs/design/returning.md. The counsellor's id travels sealed under a key
only the passphrase can re-derive; redemption is one atomic delete, so of two
concurrent redemptions exactly one wins; unknown, used and expired codes get
the same answer after the same work (the Argon2id derivation comes first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from chatserver.crypto import passphrase
from chatserver.crypto.tokens import new_id
from chatserver.domain.clock import Clock
from chatserver.errors import BadPassphrase
from chatserver.storage.base import ReturnStore

# A lookup-key collision is a 2^-64 event; three draws make failure absurd.
ISSUE_ATTEMPTS = 3


class Kdf(Protocol):
    async def derive(self, text: str) -> passphrase.Derived: ...


@dataclass(frozen=True)
class Issued:
    passphrase: str = field(repr=False)
    language: str  # the word list the passphrase was drawn from
    row_id: str
    expires_at: float


@dataclass(frozen=True)
class Redeemed:
    staff_id: int
    row_id: str


async def issue(staff_id: int, *, kdf: Kdf, store: ReturnStore, clock: Clock,
                ttl_secs: int, page_language: str | None = None) -> Issued:
    """Draw the words from the list of the youth page's language (the
    fallback list for a page language without one)."""
    language = passphrase.language_for(page_language)
    for _ in range(ISSUE_ATTEMPTS):
        text = passphrase.generate(language)
        derived = await kdf.derive(text)
        row_id = new_id()[:16]
        expires_at = clock.now() + ttl_secs
        sealed = passphrase.seal_staff_id(derived.seal_key, staff_id)
        if await store.add_return_code(derived.lookup, row_id, sealed, expires_at):
            return Issued(text, language, row_id, expires_at)
    raise RuntimeError("could not store a return code")  # never in practice


async def redeem(text: str, *, kdf: Kdf, store: ReturnStore, clock: Clock) -> Redeemed:
    """Raise ``BadPassphrase`` for unknown, used and expired alike."""
    derived = await kdf.derive(text)  # before the query: hit and miss cost the same
    row = await store.redeem_return_code(derived.lookup)
    if row is None or row.expires_at <= clock.now():
        raise BadPassphrase()
    staff_id = passphrase.open_staff_id(derived.seal_key, row.sealed)
    if staff_id is None:
        raise BadPassphrase()
    return Redeemed(staff_id, row.row_id)
