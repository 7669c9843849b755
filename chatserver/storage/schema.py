"""The one ordered list of schema migrations, for both backends.

Each version is a pair of files in ``migrations/``: ``NNNN_name.sql`` for
SQLite and ``NNNN_name.postgres.sql`` for PostgreSQL (decision 0009). Both
backends apply the same versions in the same order and record them in their
own ``schema_migrations`` table, so a version number means the same schema on
either. A version with only one of its two files is refused at open.
"""

from __future__ import annotations

import re
from importlib import resources

BACKENDS = ("sqlite", "postgresql")
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)(\.postgres)?\.sql$")


def _all() -> dict[str, list[tuple[int, str, str]]]:
    found: dict[str, list[tuple[int, str, str]]] = {b: [] for b in BACKENDS}
    folder = resources.files("chatserver.storage").joinpath("migrations")
    for item in folder.iterdir():
        match = _NAME.match(item.name)
        if match:
            backend = "postgresql" if match.group(3) else "sqlite"
            found[backend].append((int(match.group(1)), item.name,
                                   item.read_text(encoding="utf-8")))
    for backend, rows in found.items():
        rows.sort()
        versions = [v for v, _, _ in rows]
        if len(set(versions)) != len(versions):
            raise RuntimeError(f"two {backend} migrations share a version number")
    stems = {b: [name.split(".")[0] for _, name, _ in rows] for b, rows in found.items()}
    if stems["sqlite"] != stems["postgresql"]:
        raise RuntimeError("every migration needs both a .sql and a .postgres.sql file")
    return found


def migrations(backend: str = "sqlite") -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every packaged migration for ``backend``, in order."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}")
    return _all()[backend]


# What ``chatserver store copy`` moves, table by table, in this order: every
# column of every durable table (schema_migrations excepted: the target has
# its own). A migration that adds a column adds it here too.
COPY_COLUMNS: dict[str, tuple[str, ...]] = {
    "staff": ("id", "username", "password_hash", "totp_seed_sealed", "totp_last_timecode",
              "role", "alias", "capacity", "disabled", "failed_logins", "locked_until",
              "created_at", "languages"),
    "audit": ("seq", "at", "actor", "action", "conversation", "detail", "prev_hash", "hash",
              "chain"),
    "stats": ("month", "dimension", "value", "count"),
    "stats_manual": ("month", "kind", "count"),
    "return_codes": ("lookup", "row_id", "sealed", "expires_at"),
    "partners": ("code", "name_sv", "name_en", "kind", "municipality", "districts", "phone",
                 "url", "hours_sv", "hours_en", "notes", "words_sv", "words_en", "retired",
                 "verified_by", "verified_at", "revision"),
    "partner_directory": ("id", "version"),
    "audit_checkpoint": ("seq", "hash", "at", "mac"),
}
ORDER_BY = {"staff": "id", "audit": "seq", "stats": "month, dimension, value",
            "stats_manual": "month, kind",
            "return_codes": "lookup", "partners": "code", "partner_directory": "id",
            "audit_checkpoint": "seq"}
