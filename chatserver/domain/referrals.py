"""The referral partner directory (the *slussfunktion*): who a counsellor can
send a case on to, and the contact card a youth can be given.

The directory is data, not code: ``config/partners.toml`` (format and upkeep in
docs/operations.md, "The partner directory"). Another county replaces the file,
not this module. It is read once at start-up, checked entry by entry, and then
only searched in memory. A bad file stops start-up with a ``ConfigError`` that
names the entry and the field, like every other configuration mistake.

What leaves the server is ``Partner.public()``: the card shown to counsellors
and sent end-to-end encrypted into a chat. ``notes`` and ``verify`` are for
staff and operators only and never part of it.
"""

from __future__ import annotations

import os
import re
import tomllib
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from chatserver.errors import BadPayload
from chatserver.settings import REPO_ROOT, ConfigError

KINDS = ("social_services", "police", "health", "helpline", "ngo", "other")
# Stable, ASCII: the code goes into audit details and statistics (audit.py's
# detail pattern accepts it), so it must never need escaping or translation.
CODE_PATTERN = re.compile(r"[a-z0-9-]{2,48}")
# Every card must be readable in Swedish and in English; more languages welcome.
REQUIRED_LANGUAGES = ("sv", "en")
_LANGUAGE = re.compile(r"[a-z]{2,3}")
# Digits, spaces and hyphens as Swedish numbers are written ("020-50 50 50"),
# optionally a leading + for an international number. 112 is the shortest.
_PHONE = re.compile(r"\+?[0-9][0-9 -]*[0-9]")
_PHONE_DIGITS = (3, 15)
MAX_QUERY_CHARS = 64  # a name or a municipality is far shorter; bounds the work per search
MAX_LIMIT = 100  # bounds one answer to a counsellor's search
# Field length limits: generous for real data, small enough that a card stays a card.
_MAX_CHARS = {"name": 120, "municipality": 64, "phone": 32, "url": 200, "notes": 500}
_MAX_HOURS_CHARS = 200

_REQUIRED = {"code": str, "name": str, "kind": str, "municipality": str, "phone": str,
             "url": str, "hours": dict, "verify": bool}
_OPTIONAL = {"notes": str}


@dataclass(frozen=True)
class Partner:
    """One entry of the directory. Built by ``load_directory``; immutable."""

    code: str
    name: str
    kind: str
    municipality: str  # "" for county-wide and national partners
    phone: str  # "" when unknown: the row is then marked ``verify``
    url: str
    hours: Mapping[str, str] = field(hash=False)  # language code → text
    verify: bool = False  # must be checked by the centre before go-live
    notes: str = ""  # for counsellors only; never in public()

    def public(self) -> dict[str, Any]:
        """The contact card: what counsellors see and a youth may be sent."""
        return {
            "code": self.code,
            "name": self.name,
            "kind": self.kind,
            "municipality": self.municipality,
            "phone": self.phone,
            "url": self.url,
            "hours": dict(self.hours),
        }


def fold(text: str) -> str:
    """Case- and accent-insensitive form for matching: 'Södertälje' → 'sodertalje'.

    Hyphens, underscores and runs of spaces become one space, so 'upplands bro'
    finds 'Upplands-Bro' and 'social services' finds the kind 'social_services'.
    """
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[\s_\-‐‑–—]+", " ", bare).strip()


# Swedish alphabetical order puts å, ä, ö after z (Österåker after Värmdö). The
# three characters after 'z' in ASCII keep that order once the rest is folded.
_SWEDISH_LAST = str.maketrans({"å": "{", "ä": "|", "æ": "|", "ö": "}", "ø": "}"})


def _collate(text: str) -> str:
    return fold(text.casefold().translate(_SWEDISH_LAST))


def _order(p: Partner) -> tuple[str, str, str]:
    # County-wide and national partners ("" municipality) first: they fit every case.
    return (_collate(p.municipality), _collate(p.name), p.code)


class Directory:
    """The loaded directory: lookup by code and search. Read-only after load."""

    def __init__(self, partners: list[Partner]) -> None:
        by_code: dict[str, Partner] = {}
        for p in partners:
            if p.code in by_code:
                raise ConfigError(f"partner code {p.code!r} is used twice")
            by_code[p.code] = p
        self._by_code = MappingProxyType(by_code)
        self._ordered = tuple(sorted(partners, key=_order))
        # One folded haystack per partner, built once: searches only compare strings.
        self._haystacks = tuple(
            fold(" ".join((p.name, p.municipality, p.kind, p.notes))) for p in self._ordered
        )

    def __len__(self) -> int:
        return len(self._ordered)

    def __iter__(self) -> Iterator[Partner]:
        return iter(self._ordered)

    def get(self, code: str) -> Partner | None:
        return self._by_code.get(code) if isinstance(code, str) else None

    def unverified(self) -> list[Partner]:
        """Entries still marked ``verify = true``: the centre's go-live checklist."""
        return [p for p in self._ordered if p.verify]

    def search(self, query: str, kind: str | None = None, municipality: str | None = None,
               limit: int = 20) -> list[Partner]:
        """Partners whose name, municipality, kind or notes contain every word of
        ``query`` (case- and accent-insensitive), ordered by municipality, then name.

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
        for partner, haystack in zip(self._ordered, self._haystacks, strict=True):
            if len(found) >= limit:
                break
            if kind is not None and partner.kind != kind:
                continue
            if place is not None and fold(partner.municipality) != place:
                continue
            if all(term in haystack for term in terms):
                found.append(partner)
        return found


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """Settings.partners_file semantics: relative paths are from the repo root."""
    p = Path(path)
    return p if p.is_absolute() else REPO_ROOT / p


def load_directory(path: str | os.PathLike[str]) -> Directory:
    """Read and check the directory file; raise ``ConfigError`` naming the entry
    and field of the first mistake."""
    source = resolve_path(path)
    try:
        with source.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"partner directory not found: {source}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"partner directory {source} is not valid TOML: {exc}") from None
    extra = sorted(set(data) - {"partner"})
    if extra:
        raise ConfigError(f"{source}: unknown top-level key {extra[0]!r} "
                          "(entries are [[partner]] tables)")
    entries = data.get("partner")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: no [[partner]] entries")
    partners = [_partner(source, i, entry) for i, entry in enumerate(entries, start=1)]
    seen: dict[str, int] = {}
    for i, p in enumerate(partners, start=1):
        if p.code in seen:
            raise ConfigError(f"{source}: partner #{i} {p.code!r}: code is already used "
                              f"by partner #{seen[p.code]}")
        seen[p.code] = i
    return Directory(partners)


def _partner(source: Path, index: int, entry: Any) -> Partner:
    label = f"{source}: partner #{index}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{label}: must be a [[partner]] table")
    code = entry.get("code")
    if isinstance(code, str) and CODE_PATTERN.fullmatch(code):
        label = f"{label} {code!r}"

    def fail(name: str, problem: str) -> ConfigError:
        return ConfigError(f"{label}: field {name!r} {problem}")

    unknown = sorted(set(entry) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise fail(unknown[0], "is not a known field (typo?)")
    for name, kind in (_REQUIRED | _OPTIONAL).items():
        if name not in entry:
            if name in _REQUIRED:
                raise fail(name, "is missing")
            continue
        if not isinstance(entry[name], kind):
            raise fail(name, f"must be a {'table' if kind is dict else kind.__name__}")
    for name, limit in _MAX_CHARS.items():
        value = entry.get(name, "")
        if value != value.strip():
            raise fail(name, "has leading or trailing spaces")
        if len(value) > limit:
            raise fail(name, f"is longer than {limit} characters")

    if not CODE_PATTERN.fullmatch(entry["code"]):
        raise fail("code", "must be 2-48 characters of a-z, 0-9 and '-'")
    if not entry["name"]:
        raise fail("name", "is empty")
    if entry["kind"] not in KINDS:
        raise fail("kind", f"must be one of {', '.join(KINDS)}")
    if entry["kind"] == "social_services" and not entry["municipality"]:
        raise fail("municipality", "is required for social_services")
    phone = entry["phone"]
    if phone:
        digits = sum(ch.isdigit() for ch in phone)
        if not _PHONE.fullmatch(phone) or not _PHONE_DIGITS[0] <= digits <= _PHONE_DIGITS[1]:
            raise fail("phone", "must be digits, spaces and '-' as dialled, e.g. '020-50 50 50'"
                                " (or \"\" with verify = true)")
    elif not entry["verify"]:
        raise fail("verify", "must be true while phone is empty")
    url = entry["url"]
    if url and (not url.startswith("https://") or any(ch.isspace() for ch in url)):
        raise fail("url", "must be an https:// address (or \"\")")
    hours = _hours(entry["hours"], fail)
    return Partner(
        code=entry["code"], name=entry["name"], kind=entry["kind"],
        municipality=entry["municipality"], phone=phone, url=url, hours=hours,
        verify=entry["verify"], notes=entry.get("notes", ""),
    )


def _hours(raw: dict[str, Any], fail: Callable[[str, str], ConfigError]) -> Mapping[str, str]:
    for lang in REQUIRED_LANGUAGES:
        if lang not in raw:
            raise fail("hours", f"has no {lang!r} text")
    for lang, text in raw.items():
        if not _LANGUAGE.fullmatch(lang):
            raise fail("hours", f"has a key {lang!r} that is not a language code")
        if not isinstance(text, str) or not text.strip():
            raise fail("hours", f"text for {lang!r} must be a non-empty string")
        if len(text) > _MAX_HOURS_CHARS:
            raise fail("hours", f"text for {lang!r} is longer than {_MAX_HOURS_CHARS}")
    return MappingProxyType(dict(raw))
