"""The referral partner directory (the *slussfunktion*): who a counsellor can
send a case on to, and the contact card a youth can be given.

The directory lives in the database and is edited by operators while the
server runs (domain/partner_bank.py, docs/design/partners.md). This module
holds what an entry is and what makes one valid (``check_entry``, used alike
by the operator view, the CLI import and the start-up seed from
``config/partners.toml``), and the in-memory ``Directory`` every node searches.

What leaves the server to a youth is ``Partner.public()``: the card sent end
to end encrypted into a chat. ``notes``, search words and the verification
mark are for staff only and never part of it.
"""

from __future__ import annotations

import os
import re
import tomllib
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from chatserver.errors import BadKind, BadPartner, BadPayload, BadPhone
from chatserver.settings import REPO_ROOT, ConfigError
from chatserver.storage.partners import PartnerRecord

# The kinds of partner the network has. A kind is a code: it goes into audit
# details and statistics; pages show it by its translated name (staff.json,
# "partner_kinds"). Police entries name their districts in ``districts``.
KINDS = (
    "social_services",  # the municipality's social services, office hours
    "socialjour",  # social services' out-of-hours duty: evenings, nights, weekends
    "police",
    "health",
    "helpline",  # national phone and chat lines
    "shelter",  # kvinnojour, tjejjour, ungdomsjour, protected housing
    "legal",  # legal counselling, victim support
    "protection",  # protection and safety counselling, protected personal data
    "interpreter",
    "ngo",
    "other",
)
# The words, in Swedish and in English, by which a kind is found: "kvinnojour"
# and "shelter" both find shelters. Server side, so every console searches
# alike; the display names are the pages' catalogs.
KIND_WORDS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "social_services": ("socialtjänst", "socialtjänsten", "socialkontor",
                        "social services", "social welfare"),
    "socialjour": ("socialjour", "socialjouren", "jour", "kväll", "natt", "helg",
                   "social services out of hours", "emergency duty", "evening", "night",
                   "weekend"),
    "police": ("polis", "polisen", "police"),
    "health": ("vård", "sjukvård", "vårdcentral", "ungdomsmottagning", "bup",
               "health", "health care", "clinic", "youth clinic"),
    "helpline": ("stödlinje", "stödtelefon", "hjälplinje", "jourtelefon", "helpline",
                 "hotline", "support line"),
    "shelter": ("skyddat boende", "kvinnojour", "tjejjour", "ungdomsjour", "jour",
                "shelter", "safe house", "women's shelter", "girls' shelter", "youth shelter"),
    "legal": ("juridisk rådgivning", "jurist", "advokat", "brottsofferjour",
              "legal", "legal advice", "lawyer", "victim support"),
    "protection": ("skydd", "skyddsrådgivning", "skyddade personuppgifter", "hot",
                   "protection", "safety advice", "protected identity", "threat"),
    "interpreter": ("tolk", "tolkförmedling", "interpreter", "interpreting"),
    "ngo": ("ideell organisation", "förening", "voluntary organisation", "ngo", "charity"),
    "other": ("övrigt", "other"),
})
# Stable, ASCII: the code goes into audit details and statistics (audit.py's
# detail pattern accepts it), so it must never need escaping or translation.
CODE_PATTERN = re.compile(r"[a-z0-9-]{2,48}")
# Every card must be readable in Swedish and in English.
LANGUAGES = ("sv", "en")
# Digits, spaces and hyphens as Swedish numbers are written ("020-50 50 50"),
# optionally a leading + for an international number. 112 is the shortest.
_PHONE = re.compile(r"\+?[0-9][0-9 -]*[0-9]")
_PHONE_DIGITS = (3, 15)
MAX_QUERY_CHARS = 64  # a name or a municipality is far shorter; bounds the work per search
MAX_LIMIT = 100  # bounds one answer to a counsellor's search
# Length limits: generous for real data, small enough that a card stays a card.
_MAX_CHARS = {"name": 120, "name_en": 120, "municipality": 64, "phone": 32, "url": 200,
              "notes": 500}
MAX_HOURS_CHARS = 200
MAX_LIST_ITEMS = 20  # districts, or search words per language
MAX_ITEM_CHARS = 64
# Control characters (line breaks included) have no place in any field: lists
# are stored joined by a line break, and a card is one line per field.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

# The fields of an entry as the operator view, the API and the files carry
# them (docs/design/partners.md, "An entry").
EDITABLE = ("name", "name_en", "kind", "municipality", "districts", "phone", "url", "hours",
            "notes", "words")
REQUIRED = ("code", "name", "kind", "municipality", "hours")
KEPT = ("retired", "verified_by", "verified_at")  # set by operators' actions; files carry them
FIELDS = ("code", *EDITABLE, *KEPT)
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z")
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Partner:
    """One entry of the directory; immutable. Made by ``check_entry``."""

    code: str
    name: str  # as the partner calls itself (usually Swedish)
    kind: str
    municipality: str  # "" for county-wide and national partners
    phone: str  # "" when no number is listed: pages say so, never invent one
    url: str
    hours: Mapping[str, str] = field(hash=False)  # "sv", "en" → text
    name_en: str = ""  # "" when the name is the same in English
    districts: tuple[str, ...] = ()  # e.g. a police district's areas
    words_sv: tuple[str, ...] = ()  # extra search words
    words_en: tuple[str, ...] = ()
    notes: str = ""  # for counsellors only; never in public()
    retired: bool = False  # kept for audit and statistics; not searchable
    verified_by: str = ""  # the operator who last checked the entry with the partner
    verified_at: str = ""  # when (UTC ISO-8601), "" while nobody has

    @property
    def verified(self) -> bool:
        return bool(self.verified_at)

    def public(self) -> dict[str, Any]:
        """The contact card: what a youth may be sent."""
        return {
            "code": self.code,
            "name": self.name,
            "kind": self.kind,
            "municipality": self.municipality,
            "phone": self.phone,
            "url": self.url,
            "hours": dict(self.hours),
        }

    def for_counsellor(self) -> dict[str, Any]:
        """The card plus what helps a counsellor choose: never sent to a youth."""
        return {**self.public(), "name_en": self.name_en, "districts": list(self.districts),
                "notes": self.notes, "verified_at": self.verified_at}

    def entry(self) -> dict[str, Any]:
        """Every field, as the operator view and the files carry them."""
        return {
            "code": self.code, "name": self.name, "name_en": self.name_en, "kind": self.kind,
            "municipality": self.municipality, "districts": list(self.districts),
            "phone": self.phone, "url": self.url, "hours": dict(self.hours),
            "notes": self.notes,
            "words": {"sv": list(self.words_sv), "en": list(self.words_en)},
            "retired": self.retired, "verified_by": self.verified_by,
            "verified_at": self.verified_at,
        }

    def record(self) -> PartnerRecord:
        return PartnerRecord(
            code=self.code, name_sv=self.name, name_en=self.name_en, kind=self.kind,
            municipality=self.municipality, districts=self.districts, phone=self.phone,
            url=self.url, hours_sv=self.hours["sv"], hours_en=self.hours["en"],
            notes=self.notes, words_sv=self.words_sv, words_en=self.words_en,
            retired=self.retired, verified_by=self.verified_by, verified_at=self.verified_at)

    @classmethod
    def from_record(cls, r: PartnerRecord) -> Partner:
        return cls(
            code=r.code, name=r.name_sv, kind=r.kind, municipality=r.municipality,
            phone=r.phone, url=r.url,
            hours=MappingProxyType({"sv": r.hours_sv, "en": r.hours_en}),
            name_en=r.name_en, districts=r.districts, words_sv=r.words_sv,
            words_en=r.words_en, notes=r.notes, retired=r.retired,
            verified_by=r.verified_by, verified_at=r.verified_at)


def changed_fields(before: Partner, after: Partner) -> list[str]:
    """The names of the entry fields that differ (for the audit log)."""
    old, new = before.entry(), after.entry()
    return [name for name in FIELDS if old[name] != new[name]]


# --------------------------------------------------------------------- checks


def _bad(name: str, problem: str, error: type[BadPartner] = BadPartner) -> BadPartner:
    exc = error({"field": name})
    exc.problem = problem  # type: ignore[attr-defined]  # for files' messages only
    return exc


def problem_of(exc: BadPartner) -> str:
    """The human sentence for a ``check_entry`` failure (CLI and start-up)."""
    return str(getattr(exc, "problem", exc.code))


def _text(raw: Mapping[str, Any], name: str, *, required: bool = False) -> str:
    value = raw.get(name, "")
    if not isinstance(value, str):
        raise _bad(name, "must be a string")
    if required and not value.strip():
        raise _bad(name, "is empty")
    if value != value.strip():
        raise _bad(name, "has leading or trailing spaces")
    if _CONTROL.search(value):
        raise _bad(name, "holds a line break or another control character")
    limit = _MAX_CHARS.get(name)
    if limit is not None and len(value) > limit:
        raise _bad(name, f"is longer than {limit} characters")
    return value


def _items(name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or len(value) > MAX_LIST_ITEMS:
        raise _bad(name, f"must be a list of at most {MAX_LIST_ITEMS} strings")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or item != item.strip():
            raise _bad(name, "must hold non-empty strings without outer spaces")
        if ";" in item:  # the CSV export joins a list with "; "
            raise _bad(name, "has an item with a ';'")
        if len(item) > MAX_ITEM_CHARS or _CONTROL.search(item):
            raise _bad(name, f"has an item longer than {MAX_ITEM_CHARS} characters"
                             " or with a control character")
        if item not in out:
            out.append(item)
    return tuple(out)


def _per_language(name: str, value: Any, *, lists: bool) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(name, "must be a table with 'sv' and 'en'")
    extra = sorted(set(value) - set(LANGUAGES))
    if extra:
        raise _bad(name, f"has a key {extra[0]!r} (only 'sv' and 'en')")
    out: dict[str, Any] = {}
    for lang in LANGUAGES:
        if lists:
            out[lang] = _items(name, value.get(lang, []))
            continue
        text = value.get(lang)
        if not isinstance(text, str) or not text.strip():
            raise _bad(name, f"has no {lang!r} text")
        if len(text) > MAX_HOURS_CHARS or _CONTROL.search(text) or text != text.strip():
            raise _bad(name, f"text for {lang!r} is longer than {MAX_HOURS_CHARS} characters,"
                             " has outer spaces or a control character")
        out[lang] = text
    return out


def check_entry(raw: Any, *, keep: bool = True) -> Partner:
    """A valid ``Partner`` from an entry's fields (``FIELDS``), or ``BadPartner``
    (``BadKind``, ``BadPhone``) naming the first bad field in ``info.field``.

    ``keep=False`` (edits from the operator view): ``retired`` and the
    verification mark are not accepted, since only their own actions set them.
    """
    if not isinstance(raw, Mapping):
        raise BadPayload()
    allowed = FIELDS if keep else ("code", *EDITABLE)
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise _bad(unknown[0], "is not a known field (typo?)")
    for name in REQUIRED:
        if name not in raw:
            raise _bad(name, "is missing")
    code = raw["code"]
    if not isinstance(code, str) or not CODE_PATTERN.fullmatch(code):
        raise _bad("code", "must be 2-48 characters of a-z, 0-9 and '-'")
    name = _text(raw, "name", required=True)
    name_en = _text(raw, "name_en")
    kind = raw["kind"]
    if kind not in KINDS:
        raise _bad("kind", f"must be one of {', '.join(KINDS)}", BadKind)
    municipality = _text(raw, "municipality")
    if kind == "social_services" and not municipality:
        raise _bad("municipality", "is required for social_services")
    phone = _text(raw, "phone")
    if phone:
        digits = sum(ch.isdigit() for ch in phone)
        if not _PHONE.fullmatch(phone) or not _PHONE_DIGITS[0] <= digits <= _PHONE_DIGITS[1]:
            raise _bad("phone", "must be digits, spaces and '-' as dialled, e.g."
                                " '020-50 50 50', or \"\" when no number is listed", BadPhone)
    url = _text(raw, "url")
    if url and (not url.startswith("https://") or any(ch.isspace() for ch in url)):
        raise _bad("url", "must be an https:// address (or \"\")")
    hours = _per_language("hours", raw["hours"], lists=False)
    words = _per_language("words", raw.get("words", {}), lists=True)
    districts = _items("districts", raw.get("districts", []))
    notes = _text(raw, "notes")
    retired = raw.get("retired", False)
    if not isinstance(retired, bool):
        raise _bad("retired", "must be true or false")
    verified_by = _text(raw, "verified_by")
    verified_at = _text(raw, "verified_at")
    if verified_by and not _USERNAME.fullmatch(verified_by):
        raise _bad("verified_by", "must be a staff username")
    if verified_at and not _ISO.fullmatch(verified_at):
        raise _bad("verified_at", "must be a UTC time like 2027-01-15T08:00:00Z")
    if bool(verified_by) != bool(verified_at):
        raise _bad("verified_at", "and verified_by are given together or not at all")
    return Partner(
        code=code, name=name, kind=kind, municipality=municipality, phone=phone, url=url,
        hours=MappingProxyType(hours), name_en=name_en, districts=districts,
        words_sv=words["sv"], words_en=words["en"], notes=notes, retired=retired,
        verified_by=verified_by, verified_at=verified_at)


# --------------------------------------------------------------------- search


def fold(text: str) -> str:
    """Case- and accent-insensitive form for matching: 'Södertälje' → 'sodertalje'.

    Hyphens, underscores, apostrophes and runs of spaces become one space, so
    'upplands bro' finds 'Upplands-Bro' and 'social services' finds the kind
    'social_services'.
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[\s_\-‐‑–—'’]+", " ", bare).strip()


# Swedish alphabetical order puts å, ä, ö after z (Österåker after Värmdö). The
# three characters after 'z' in ASCII keep that order once the rest is folded.
_SWEDISH_LAST = str.maketrans({"å": "{", "ä": "|", "æ": "|", "ö": "}", "ø": "}"})


def _collate(text: str) -> str:
    return fold(text.casefold().translate(_SWEDISH_LAST))


def _order(p: Partner) -> tuple[str, str, str]:
    # County-wide and national partners ("" municipality) first: they fit every case.
    return (_collate(p.municipality), _collate(p.name), p.code)


def _haystack(p: Partner) -> str:
    return " | ".join(fold(part) for part in (
        p.name, p.name_en, p.municipality, *p.districts, p.kind, *KIND_WORDS[p.kind],
        *p.words_sv, *p.words_en, p.notes))


class Directory:
    """One version of the directory: lookup by code and search. Read-only;
    a change makes a new ``Directory`` (partner_bank.py)."""

    def __init__(self, partners: list[Partner], version: int = 0) -> None:
        by_code: dict[str, Partner] = {}
        for p in partners:
            if p.code in by_code:
                raise ConfigError(f"partner code {p.code!r} is used twice")
            by_code[p.code] = p
        self.version = version
        self._by_code = MappingProxyType(by_code)
        self._all = tuple(sorted(partners, key=_order))
        self._current = tuple(p for p in self._all if not p.retired)
        # One folded haystack per partner, built once: searches only compare strings.
        self._haystacks = tuple(_haystack(p) for p in self._current)

    def __len__(self) -> int:
        """Entries a counsellor can find (retired ones are not counted)."""
        return len(self._current)

    def __iter__(self) -> Iterator[Partner]:
        return iter(self._current)

    def everything(self) -> tuple[Partner, ...]:
        """Every entry, retired ones too (the operator view, export)."""
        return self._all

    def get(self, code: str) -> Partner | None:
        """The current entry with ``code``; None if there is none or it is retired."""
        p = self.lookup(code)
        return None if p is None or p.retired else p

    def lookup(self, code: str) -> Partner | None:
        """Any entry with ``code``, retired ones too."""
        return self._by_code.get(code) if isinstance(code, str) else None

    def unverified(self) -> list[Partner]:
        """Current entries nobody has checked yet: the centre's go-live checklist."""
        return [p for p in self._current if not p.verified]

    def search(self, query: str, kind: str | None = None, municipality: str | None = None,
               limit: int = 20) -> list[Partner]:
        """Current partners whose name (Swedish or English), municipality,
        districts, kind (by its Swedish and English words), search words or
        notes contain every word of ``query`` (case- and accent-insensitive),
        ordered by municipality, then name.

        An empty query lists everything that passes the filters. ``kind`` must be
        one of ``KINDS``; ``municipality`` matches that municipality only (also
        accent-insensitive). The query is cut at ``MAX_QUERY_CHARS`` and the
        answer at ``min(limit, MAX_LIMIT)``.
        """
        if not isinstance(query, str) or isinstance(limit, bool) or not isinstance(limit, int):
            raise BadPayload()
        if kind is not None and kind not in KINDS:
            raise BadPayload()
        if municipality is not None and not isinstance(municipality, str):
            raise BadPayload()
        limit = max(0, min(limit, MAX_LIMIT))
        terms = fold(query[:MAX_QUERY_CHARS]).split()
        place = fold(municipality[:MAX_QUERY_CHARS]) if municipality is not None else None
        found: list[Partner] = []
        for partner, haystack in zip(self._current, self._haystacks, strict=True):
            if len(found) >= limit:
                break
            if kind is not None and partner.kind != kind:
                continue
            if place is not None and fold(partner.municipality) != place:
                continue
            if all(term in haystack for term in terms):
                found.append(partner)
        return found


# ---------------------------------------------------------------------- files


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """Settings.partners_file semantics: relative paths are from the repo root."""
    p = Path(path)
    return p if p.is_absolute() else REPO_ROOT / p


def entries_from_toml(data: Mapping[str, Any], source: str) -> list[Partner]:
    """Check every ``[[partner]]`` table of a parsed TOML directory; raise
    ``ConfigError`` naming the entry and field of the first mistake."""
    extra = sorted(set(data) - {"partner"})
    if extra:
        raise ConfigError(f"{source}: unknown top-level key {extra[0]!r} "
                          "(entries are [[partner]] tables)")
    entries = data.get("partner")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: no [[partner]] entries")
    return checked_entries(entries, source)


def checked_entries(entries: list[Any], source: str) -> list[Partner]:
    """``check_entry`` on each, and no code twice; ``ConfigError`` naming the
    first bad entry (by number and code) and its field."""
    partners: list[Partner] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries, start=1):
        label = f"{source}: partner #{i}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{label}: must be a [[partner]] table")
        code = entry.get("code")
        if isinstance(code, str) and CODE_PATTERN.fullmatch(code):
            label = f"{label} {code!r}"
        try:
            p = check_entry(entry)
        except BadPartner as exc:
            raise ConfigError(f"{label}: field {exc.info.get('field')!r} "
                              f"{problem_of(exc)}") from None
        if p.code in seen:
            raise ConfigError(f"{label}: code is already used by partner #{seen[p.code]}")
        seen[p.code] = i
        partners.append(p)
    return partners


def load_directory(path: str | os.PathLike[str]) -> Directory:
    """Read and check a TOML directory file (the seed, an import)."""
    source = resolve_path(path)
    try:
        with source.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"partner directory not found: {source}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"partner directory {source} is not valid TOML: {exc}") from None
    return Directory(entries_from_toml(data, str(source)))
