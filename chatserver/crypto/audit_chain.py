"""The audit log's chain: each entry's link covers the previous link and the
entry's own fields, so editing, deleting or reordering rows breaks the chain
from that row on. Design: docs/design/audit.md; the key: decision 0008.

Two versions, one per entry (column ``chain``):

- ``CHAIN_UNKEYED`` (1): BLAKE2b-256 with no key. Every entry written before
  the audit key existed. Anyone with the database could recompute these, so
  they are trusted only as far as the first keyed entry after them, whose
  link covers the last unkeyed hash.
- ``CHAIN_KEYED`` (2): keyed BLAKE2b-256 (a MAC) under ``secrets.audit_key``,
  which lives in env or the secrets file, never in the database. Someone who
  can write the database but has no key can neither recompute these links
  after an edit nor append an entry that verifies.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping

GENESIS = "0" * 64  # the prev_hash of the first entry
HASH_HEX_CHARS = 64  # BLAKE2b-256
CHAIN_UNKEYED = 1
CHAIN_KEYED = 2
KEY_BYTES = 32
# BLAKE2b's personalisation: a keyed link is never equal to a BLAKE2b value
# computed for any other purpose, even under the same key bytes.
_KEYED_PERSON = b"audit-link-v2"


def canonical_json(value: object) -> str:
    """Deterministic JSON: sorted keys, no whitespace, ASCII only."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _message(prev_hash: str, fields: Mapping[str, object]) -> bytes:
    if len(prev_hash) != HASH_HEX_CHARS:
        raise ValueError("prev_hash must be 64 hex characters")
    return prev_hash.encode("ascii") + canonical_json(dict(fields)).encode("ascii")


def entry_hash(prev_hash: str, fields: Mapping[str, object]) -> str:
    """Unkeyed link (chain 1): BLAKE2b-256 (hex) over ``prev_hash`` followed by
    the canonical JSON of ``fields``. Kept only to verify old entries."""
    return hashlib.blake2b(_message(prev_hash, fields), digest_size=32).hexdigest()


def entry_mac(key: bytes, prev_hash: str, fields: Mapping[str, object]) -> str:
    """Keyed link (chain 2): BLAKE2b-256 keyed with ``key`` and personalised
    ``audit-link-v2``, over the same bytes as ``entry_hash``."""
    if len(key) != KEY_BYTES:
        raise ValueError(f"audit key must be {KEY_BYTES} bytes")
    return hashlib.blake2b(_message(prev_hash, fields), digest_size=32, key=key,
                           person=_KEYED_PERSON).hexdigest()


def link_matches(chain: int, key: bytes, prev_hash: str, fields: Mapping[str, object],
                 stored: str) -> bool:
    """Whether ``stored`` is the right link for this entry. Constant time for
    keyed links: a timing difference must not help someone forge one."""
    if chain == CHAIN_UNKEYED:
        return entry_hash(prev_hash, fields) == stored
    if chain == CHAIN_KEYED:
        return hmac.compare_digest(entry_mac(key, prev_hash, fields).encode("ascii"),
                                   stored.encode("ascii", "replace"))
    raise ValueError("unknown chain version")


# A retention checkpoint's MAC is personalised differently from a link, so a
# checkpoint's MAC can never pass as an entry's link or the other way round.
_CHECKPOINT_PERSON = b"audit-cut-v1"


def checkpoint_mac(key: bytes, seq: int, link: str, at: str) -> str:
    """MAC under the audit key over a retention checkpoint: "entries up to
    ``seq`` were pruned at ``at``, and entry ``seq``'s link was ``link``".
    ``verify`` starts the chain from it; without the key nobody can make one,
    so entries cannot be cut from the front unnoticed (docs/design/audit.md,
    "Retention")."""
    if len(key) != KEY_BYTES:
        raise ValueError(f"audit key must be {KEY_BYTES} bytes")
    return hashlib.blake2b(_message(link, {"checkpoint": seq, "at": at}), digest_size=32,
                           key=key, person=_CHECKPOINT_PERSON).hexdigest()


def checkpoint_matches(key: bytes, seq: int, link: str, at: str, stored: str) -> bool:
    return hmac.compare_digest(checkpoint_mac(key, seq, link, at).encode("ascii"),
                               stored.encode("ascii", "replace"))
