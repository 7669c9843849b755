"""The audit log's hash chain: each entry's hash covers the previous hash and
the entry's own fields, so editing, deleting or reordering rows breaks the
chain from that row on. Design: docs/design/audit.md.

Unkeyed on purpose: anyone holding a copy of the log can verify it. The limit
that follows (someone who can write the database can recompute the whole
chain) is met by exporting the head hash elsewhere (``audit verify --print-head``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

GENESIS = "0" * 64  # the prev_hash of the first entry
HASH_HEX_CHARS = 64  # BLAKE2b-256


def canonical_json(value: object) -> str:
    """Deterministic JSON: sorted keys, no whitespace, ASCII only."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def entry_hash(prev_hash: str, fields: Mapping[str, object]) -> str:
    """BLAKE2b-256 (hex) over ``prev_hash`` followed by the canonical JSON of ``fields``."""
    if len(prev_hash) != HASH_HEX_CHARS:
        raise ValueError("prev_hash must be 64 hex characters")
    h = hashlib.blake2b(digest_size=32)
    h.update(prev_hash.encode("ascii"))
    h.update(canonical_json(dict(fields)).encode("ascii"))
    return h.hexdigest()
