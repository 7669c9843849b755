"""The partner bank: the directory as operators keep it, live.

The database is the truth (storage/partners.py). Each node holds one
``Directory`` built from it, with the version it was read at. A change made
here is written (one transaction that raises the version), audited, read back
and then announced to every listener: the transport pushes
``partners_changed`` to the consoles. A change made elsewhere (another node,
the CLI import) is found by ``refresh``, which compares versions; with a
shared fan-out between nodes the announcement of one node makes the others
refresh at once (docs/design/partners.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from chatserver.domain.audit import ACTOR_SYSTEM, AuditLog, utc_iso
from chatserver.domain.clock import Clock
from chatserver.domain.referrals import Directory, Partner, changed_fields, check_entry
from chatserver.errors import BadPayload, NotAllowed, UnknownPartner
from chatserver.storage.partners import PartnerStore

Listener = Callable[[int], Awaitable[None]]
_AUDIT_FIELDS_CHARS = 64  # domain/audit.py's limit on one detail value
# What ``Partner.public()`` gives a youth: a change to any of them takes the
# verification mark away ("checked <date>" must not stand beside a new number).
CARD_FIELDS = ("name", "kind", "municipality", "phone", "url", "hours")


def audit_fields(names: Sequence[str]) -> str:
    """Changed field names joined by '+', within the audit's 64 characters
    (the count goes alongside, so a cut list is never mistaken for all)."""
    out = ""
    for name in names:
        joined = f"{out}+{name}" if out else name
        if len(joined) > _AUDIT_FIELDS_CHARS - len("+more"):
            return f"{out}+more"
        out = joined
    return out


class PartnerBank:
    def __init__(self, store: PartnerStore, audit: AuditLog, clock: Clock) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock
        self._directory = Directory([])
        self._listeners: list[Listener] = []
        # One change at a time from this node: each is written, read back and
        # announced before the next, so announcements go out in version order.
        self._lock = asyncio.Lock()

    @property
    def directory(self) -> Directory:
        return self._directory

    def listen(self, listener: Listener) -> None:
        """``listener(version)`` is awaited after every change this node sees."""
        self._listeners.append(listener)

    async def open(self, seed: Callable[[], Iterable[Partner]] | None = None,
                   actor: str = ACTOR_SYSTEM) -> int:
        """Load the directory; if the database never held one, seed it first
        from ``seed()`` (the partners file). The number of entries seeded."""
        seeded = 0
        if seed is not None and await self._store.partner_version() == 0:
            partners = list(seed())
            version = await self._store.replace_partners([p.record() for p in partners],
                                                         if_version=0)
            if version is not None:  # None: another node seeded first
                seeded = len(partners)
                await self._audit.record(actor, "partners_seeded", count=seeded)
        await self._reload()
        return seeded

    async def refresh(self) -> bool:
        """Read the directory again if the database holds a newer version
        (changed by another node or the CLI); True if it did."""
        if await self._store.partner_version() == self._directory.version:
            return False
        async with self._lock:
            await self._reload()
        await self._announce()
        return True

    async def _reload(self) -> None:
        version, records = await self._store.list_partners()
        self._directory = Directory([Partner.from_record(r) for r in records], version)

    async def _announce(self) -> None:
        version = self._directory.version
        for listener in self._listeners:
            await listener(version)

    async def _write(self, write: Callable[[], Awaitable[Any]], action: str,
                     actor: str, **detail: object) -> None:
        async with self._lock:
            await write()
            # The change is in the database: audit it before anything that
            # may still fail (the read back, a listener), so that no change
            # goes unaudited.
            await self._audit.record(actor, action, None, **detail)
            await self._reload()
        await self._announce()

    # ------------------------------------------------------------ operators

    async def add(self, actor: str, raw: Any) -> Partner:
        partner = check_entry(raw, keep=False)
        await self._write(lambda: self._store.add_partner(partner.record()),
                          "partner_added", actor, partner=partner.code, role=partner.kind)
        return partner

    async def edit(self, actor: str, code: str, raw: Any) -> Partner:
        """Replace an entry's editable fields (all of them: ``EDITABLE``).
        Its retirement stays; its verification mark stays unless what a youth
        is given (``CARD_FIELDS``: a number, hours, an address) changed, since
        nobody has checked the new details with the partner yet."""
        if not isinstance(raw, Mapping) or "code" in raw:
            raise BadPayload()
        before = self._existing(code)
        edited = check_entry({"code": code, **raw}, keep=False)
        card_changed = any(getattr(before, f) != getattr(edited, f) for f in CARD_FIELDS)
        after = dataclasses.replace(
            edited, retired=before.retired,
            verified_by="" if card_changed else before.verified_by,
            verified_at="" if card_changed else before.verified_at)
        changed = changed_fields(before, after)
        if changed:
            await self._write(lambda: self._store.update_partner(after.record()),
                              "partner_edited", actor, partner=code,
                              fields=audit_fields(changed), count=len(changed))
        return after

    async def set_retired(self, actor: str, code: str, retired: bool) -> Partner:
        if not isinstance(retired, bool):
            raise BadPayload()
        before = self._existing(code)
        after = dataclasses.replace(before, retired=retired)
        if before.retired != retired:
            await self._write(lambda: self._store.update_partner(after.record()),
                              "partner_retired" if retired else "partner_restored", actor,
                              partner=code)
        return after

    async def verify(self, actor: str, code: str) -> Partner:
        """Mark the entry checked with the partner, by ``actor``, now."""
        before = self._existing(code)
        if before.retired:
            raise NotAllowed()
        after = dataclasses.replace(before, verified_by=actor,
                                    verified_at=utc_iso(self._clock.now()))
        await self._write(lambda: self._store.update_partner(after.record()),
                          "partner_verified", actor, partner=code)
        return after

    async def replace_all(self, actor: str, partners: Sequence[Partner]) -> tuple[int, int]:
        """The import: the directory becomes ``partners`` (already checked, as
        a whole); entries they do not name are retired, none deleted.
        (entries written, entries retired by it)."""
        named = {p.code for p in partners}
        retiring = sum(1 for p in self._directory.everything()
                       if not p.retired and p.code not in named)
        partners = [self._unmark_changed_card(p) for p in partners]
        await self._write(lambda: self._store.replace_partners([p.record() for p in partners]),
                          "partners_imported", actor, count=len(partners), retired=retiring)
        return len(partners), retiring

    def _unmark_changed_card(self, p: Partner) -> Partner:
        """An imported entry whose card differs from the stored one but which
        still carries the stored mark (an exported file edited, e.g. a new
        number from the annual check) loses the mark, as an edit would; a
        file that sets a new mark keeps it."""
        stored = self._directory.lookup(p.code)
        if stored is None or not p.verified_at or \
                (p.verified_by, p.verified_at) != (stored.verified_by, stored.verified_at) or \
                all(getattr(stored, f) == getattr(p, f) for f in CARD_FIELDS):
            return p
        return dataclasses.replace(p, verified_by="", verified_at="")

    def _existing(self, code: Any) -> Partner:
        p = self._directory.lookup(code) if isinstance(code, str) else None
        if p is None:
            raise UnknownPartner()
        return p
