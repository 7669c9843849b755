"""What a youth (or a professional) says at start, and how it is counted for
statistics (docs/statistics.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chatserver.settings import Settings


class StatsSink(Protocol):
    def count(self, dimension: str, value: str) -> None: ...


@dataclass(frozen=True, slots=True)
class StartProfile:
    language: str | None = None
    age_band: str | None = None
    gender: str | None = None
    municipality: str | None = None
    topic: str | None = None
    urgent: bool = False
    professional: bool = False  # the consultation lane, for professionals
    workplace_municipality: str | None = None  # professionals only, for statistics
    profession: str | None = None  # professionals only, for statistics
    district: str | None = None  # youths in a municipality with districts, for statistics
    page_language: str | None = None  # the youth page's language (a catalog code)


def count_profile(stats: StatsSink | None, settings: Settings, profile: StartProfile,
                  returning: bool = False) -> None:
    if stats is None:
        return
    stats.count("contact_kind", "returning" if returning else "first")
    stats.count("language", profile.language or "unsaid")  # the chosen chat language
    if profile.professional:
        stats.count("contacts", "professional")
        stats.count("workplace_municipality", profile.workplace_municipality or "unsaid")
        stats.count("profession", profile.profession or "unsaid")
        return
    stats.count("contacts", "youth")
    districts = settings.service.get("profile", {}).get("districts", {})
    if profile.municipality is not None and profile.municipality in districts:
        stats.count("district", profile.district or "unsaid")
    for dim in ("gender", "age_band", "municipality", "topic"):
        value = getattr(profile, dim)
        stats.count(dim, value if value is not None else "unsaid")
