"""Where the funders' counts are made: the start profile (districts,
professions, chat language), first vs returning contact, and demand not met
(domain/chat/profile.py, queueing.py, lifecycle.py; docs/statistics.md)."""

from __future__ import annotations

import calendar
import os

import pytest

from chatserver import errors
from chatserver.crypto.tokens import b64e
from chatserver.domain.clock import FakeClock
from chatserver.domain.conversations import STAFF_NS, YOUTH_NS, ChatService, StartProfile
from chatserver.domain.events import Conn
from chatserver.domain.model import StaffRef
from chatserver.settings import Settings
from chatserver.transport import schemas

# Monday 2026-12-07 19:30 in Stockholm (UTC+1): a weekday evening.
MONDAY_EVENING = float(calendar.timegm((2026, 12, 7, 18, 30, 0)))


class Sink:
    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def count(self, dimension: str, value: str) -> None:
        self.counts[(dimension, value)] = self.counts.get((dimension, value), 0) + 1


def chat(settings: Settings) -> tuple[ChatService, Sink, FakeClock]:
    sink, clock = Sink(), FakeClock(MONDAY_EVENING)
    return ChatService(settings, clock, stats=sink), sink, clock


def on_duty(service: ChatService) -> None:
    ref = StaffRef(id=1, username="user1", role="counsellor", alias="Mira", capacity=3)
    service.staff_connected(ref, Conn(STAFF_NS, "s1"))
    service.duty(ref, True)


def pk() -> str:
    return b64e(os.urandom(32))


def test_a_start_while_closed_counts_only_its_band(settings: Settings) -> None:
    service, sink, clock = chat(settings)
    with pytest.raises(errors.NobodyOnDuty):
        service.start(Conn(YOUTH_NS, "y1"), pk(), StartProfile(gender="girl", topic="fgm"))
    clock.advance(6 * 86400 - 10 * 3600)  # Sunday 09:30: a weekend day
    with pytest.raises(errors.NobodyOnDuty):
        service.start(Conn(YOUTH_NS, "y2"), pk(), StartProfile())
    assert sink.counts == {("unmet_closed", "weekday_evening"): 1,
                           ("unmet_closed", "weekend_day"): 1}


def test_a_youth_who_leaves_the_queue_is_unmet_demand_of_the_band_they_asked_in(
        settings: Settings) -> None:
    service, sink, clock = chat(settings)
    on_duty(service)
    conn = Conn(YOUTH_NS, "y1")
    conv = service.start(conn, pk(), StartProfile()).reply["conversation"]
    clock.advance(3 * 3600)  # leaves at 22:30, a weekday night
    service.leave(conn, conv, "youth_left")
    assert sink.counts[("unmet_left", "weekday_evening")] == 1
    assert not [k for k in sink.counts if k == ("unmet_left", "weekday_night")]


def test_a_conversation_that_was_claimed_is_not_unmet(settings: Settings) -> None:
    service, sink, _ = chat(settings)
    on_duty(service)
    ref = StaffRef(id=1, username="user1", role="counsellor", alias="Mira", capacity=3)
    conn = Conn(YOUTH_NS, "y1")
    conv = service.start(conn, pk(), StartProfile()).reply["conversation"]
    service.claim(ref, Conn(STAFF_NS, "s1"), conv, pk())
    service.leave(conn, conv, "youth_left")
    assert not [k for k in sink.counts if k[0] == "unmet_left"]


def test_profile_counts_district_language_and_first_or_returning(settings: Settings) -> None:
    service, sink, _ = chat(settings)
    on_duty(service)
    service.start(Conn(YOUTH_NS, "y1"), pk(), StartProfile(
        municipality="Stockholm", district="Rinkeby-Kista", language="ar"))
    service.start(Conn(YOUTH_NS, "y2"), pk(), StartProfile(municipality="Stockholm"),
                  returning_to=1)
    service.start(Conn(YOUTH_NS, "y3"), pk(), StartProfile(municipality="Solna",
                                                           page_language="fa"))
    assert sink.counts[("district", "Rinkeby-Kista")] == 1
    assert sink.counts[("district", "unsaid")] == 1  # Stockholm without a district
    assert sum(n for (d, _), n in sink.counts.items() if d == "district") == 2  # not Solna
    assert sink.counts[("language", "ar")] == 1
    assert sink.counts[("language", "unsaid")] == 2  # the page's language is not counted
    assert sink.counts[("contact_kind", "first")] == 2
    assert sink.counts[("contact_kind", "returning")] == 1


def test_professionals_count_profession_and_workplace(settings: Settings) -> None:
    service, sink, _ = chat(settings)
    on_duty(service)
    service.start(Conn(YOUTH_NS, "p1"), pk(), StartProfile(
        professional=True, workplace_municipality="Nacka", profession="school"))
    service.start(Conn(YOUTH_NS, "p2"), pk(), StartProfile(professional=True))
    assert sink.counts[("profession", "school")] == 1
    assert sink.counts[("profession", "unsaid")] == 1
    assert sink.counts[("workplace_municipality", "Nacka")] == 1
    assert ("contacts", "youth") not in sink.counts


@pytest.mark.parametrize("profile", [
    {"district": "Bromma"},  # no municipality
    {"municipality": "Solna", "district": "Bromma"},  # Solna has no districts
    {"municipality": "Stockholm", "district": "Gamla stan"},  # not on the list
    {"profession": "school"},  # a youth, not a professional
    {"professional": True, "profession": "astronaut"},
])
def test_bad_profile_fields_are_refused(settings: Settings, profile: dict[str, object]) -> None:
    with pytest.raises(errors.BadPayload):
        schemas.start({"kx_pk": pk(), "profile": profile}, settings)


def test_good_profile_fields_pass(settings: Settings) -> None:
    _, youth, _ = schemas.start({"kx_pk": pk(), "profile": {
        "municipality": "Stockholm", "district": "Södermalm"}}, settings)
    assert youth.district == "Södermalm"
    _, pro, _ = schemas.start({"kx_pk": pk(), "profile": {
        "professional": True, "profession": "health_care"}}, settings)
    assert pro.profession == "health_care"
