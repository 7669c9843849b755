"""The partner directory as stored: one ``PartnerRecord`` per entry, and the
``PartnerStore`` protocol both backends implement (sqlite_partners.py,
postgres_partners.py). Values arrive checked by the domain
(domain/referrals.py); the store only keeps them and the directory version.

Every change raises the one directory version in the same transaction, so a
node that holds version N knows its copy is current exactly when the database
says N (docs/design/partners.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# Lists (districts, search words) are kept as one text column, joined by a
# line break: no entry of them may hold one (the domain refuses it).
LIST_SEPARATOR = "\n"

PARTNER_COLUMNS = (
    "code", "name_sv", "name_en", "kind", "municipality", "districts", "phone", "url",
    "hours_sv", "hours_en", "notes", "words_sv", "words_en", "retired", "verified_by",
    "verified_at",
)


@dataclass(frozen=True, slots=True)
class PartnerRecord:
    """One directory entry as stored (``revision`` is set by the store)."""

    code: str
    name_sv: str
    name_en: str
    kind: str
    municipality: str
    districts: tuple[str, ...]
    phone: str
    url: str
    hours_sv: str
    hours_en: str
    notes: str
    words_sv: tuple[str, ...]
    words_en: tuple[str, ...]
    retired: bool
    verified_by: str
    verified_at: str  # UTC ISO-8601 with 'Z', or "" while nobody has checked it
    revision: int = 0

    def row(self) -> tuple[Any, ...]:
        """The values of ``PARTNER_COLUMNS``, in order, as the columns hold them."""
        return (
            self.code, self.name_sv, self.name_en, self.kind, self.municipality,
            LIST_SEPARATOR.join(self.districts), self.phone, self.url, self.hours_sv,
            self.hours_en, self.notes, LIST_SEPARATOR.join(self.words_sv),
            LIST_SEPARATOR.join(self.words_en), int(self.retired), self.verified_by,
            self.verified_at,
        )

    @classmethod
    def from_row(cls, row: Any) -> PartnerRecord:
        """From a database row (sqlite3.Row or asyncpg.Record, by column name)."""

        def split(text: str) -> tuple[str, ...]:
            return tuple(part for part in text.split(LIST_SEPARATOR) if part)

        return cls(
            code=row["code"], name_sv=row["name_sv"], name_en=row["name_en"],
            kind=row["kind"], municipality=row["municipality"],
            districts=split(row["districts"]), phone=row["phone"], url=row["url"],
            hours_sv=row["hours_sv"], hours_en=row["hours_en"], notes=row["notes"],
            words_sv=split(row["words_sv"]), words_en=split(row["words_en"]),
            retired=bool(row["retired"]), verified_by=row["verified_by"],
            verified_at=row["verified_at"], revision=int(row["revision"]),
        )


class PartnerStore(Protocol):
    async def partner_version(self) -> int:
        """The directory version: 0 for a directory never written."""
        ...

    async def list_partners(self) -> tuple[int, list[PartnerRecord]]:
        """(version, every entry, retired ones too, by code), read together."""
        ...

    async def add_partner(self, record: PartnerRecord) -> int:
        """Insert a new entry; the new version. Raises ``errors.PartnerExists``
        if the code is taken (retired entries included)."""
        ...

    async def update_partner(self, record: PartnerRecord) -> int:
        """Replace the entry with ``record.code``; the new version. Raises
        ``errors.UnknownPartner`` if there is none."""
        ...

    async def replace_partners(self, records: Sequence[PartnerRecord],
                               if_version: int | None = None) -> int | None:
        """Make the directory exactly ``records`` plus every stored entry they
        do not name, retired (a code is never deleted): one transaction, one
        new version, which is returned. With ``if_version``, only if the
        directory is still at that version (else None and nothing changes):
        the start-up seed uses ``if_version=0`` so that of several nodes
        starting at once exactly one seeds."""
        ...
