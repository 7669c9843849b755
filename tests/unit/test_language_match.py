"""Take next prefers a youth whose language the counsellor speaks: the chosen
chat language, else the page's; within the first waiting youth's priority and
lane; with no match the oldest, as before. Memory only, a fake clock."""

from __future__ import annotations

import os
from typing import Any

import pytest

from chatserver.crypto.tokens import b64e
from chatserver.domain.clock import FakeClock
from chatserver.domain.conversations import STAFF_NS, YOUTH_NS, ChatService, StartProfile
from chatserver.domain.events import Conn
from chatserver.domain.model import StaffRef
from chatserver.queue.model import WaitingQueue
from chatserver.settings import Settings


def pk() -> str:
    return b64e(os.urandom(32))


class World:
    def __init__(self, settings: Settings, make_chat: Any) -> None:
        self.clock = FakeClock()
        # In memory, and through a Redis log with two replicas (conftest.py).
        self.chat: ChatService = make_chat(self.clock, None, settings)
        self.n = 0

    def counsellor(self, n: int, languages: tuple[str, ...]) -> tuple[StaffRef, Conn]:
        ref = StaffRef(id=n, username=f"user{n}", role="counsellor", alias=f"Alias {n}",
                       capacity=10, languages=languages)
        conn = Conn(STAFF_NS, f"s{n}")
        self.chat.staff_connected(ref, conn)
        self.chat.duty(ref, True)
        return ref, conn

    def youth(self, **profile: object) -> tuple[Conn, str]:
        self.n += 1
        self.clock.advance(1)
        conn = Conn(YOUTH_NS, f"y{self.n}")
        out = self.chat.start(conn, pk(), StartProfile(**profile))  # type: ignore[arg-type]
        return conn, str(out.reply["conversation"])

    def take_next(self, ref: StaffRef, conn: Conn) -> str:
        return str(self.chat.claim(ref, conn, None, pk()).reply["conversation"])


@pytest.fixture
def world(settings: Settings, make_chat: Any) -> World:
    return World(settings, make_chat)


def test_prefers_the_oldest_youth_in_a_language_the_counsellor_speaks(world: World) -> None:
    ref, conn = world.counsellor(1, ("so", "ti"))
    _, sv = world.youth(language="sv")
    _, so_page = world.youth(page_language="so")  # no chat language chosen: the page's
    _, so_chat = world.youth(language="so", page_language="sv")
    _, ti = world.youth(language="ti")
    # The chosen chat language wins over the page's: a youth reading the page
    # in Somali who asked for Swedish is not matched on Somali.
    _, sv_chat_so_page = world.youth(language="sv", page_language="so")
    taken = [world.take_next(ref, conn) for _ in range(4)]
    assert taken == [so_page, so_chat, ti, sv]
    assert world.take_next(ref, conn) == sv_chat_so_page


def test_no_match_takes_the_oldest_and_no_languages_behaves_as_before(world: World) -> None:
    ref, conn = world.counsellor(1, ("fa",))
    other, oconn = world.counsellor(2, ())
    _, first = world.youth(language="sv")
    _, second = world.youth(language="ar")
    _, third = world.youth(language="fa")
    assert world.take_next(other, oconn) == first  # no languages set: the oldest
    assert world.take_next(ref, conn) == third
    assert world.take_next(ref, conn) == second  # nobody speaks fa any more: the oldest


def test_urgent_stays_first_whatever_the_language(world: World) -> None:
    ref, conn = world.counsellor(1, ("so",))
    _, normal_so = world.youth(language="so")
    _, urgent_sv = world.youth(language="sv", urgent=True)
    _, urgent_so = world.youth(language="so", urgent=True)
    _, urgent_sv2 = world.youth(language="sv", urgent=True)
    # Among the urgent ones the Somali speaker comes first; the normal-priority
    # Somali speaker waits behind every urgent youth.
    assert [world.take_next(ref, conn) for _ in range(4)] == \
        [urgent_so, urgent_sv, urgent_sv2, normal_so]


def test_a_paused_youth_is_skipped_and_lanes_keep_their_order(world: World) -> None:
    ref, conn = world.counsellor(1, ("ti",))
    _, sv = world.youth(language="sv")
    paused_conn, paused_ti = world.youth(language="ti", urgent=True)
    world.chat.pause(paused_conn, paused_ti, True)
    _, pro_ti = world.youth(language="ti", professional=True)
    _, ti = world.youth(language="ti")
    # The paused urgent youth cannot be taken; the general lane comes before
    # the professional one even though both hold a Tigrinya speaker.
    assert world.take_next(ref, conn) == ti
    assert world.take_next(ref, conn) == sv
    assert world.take_next(ref, conn) == pro_ti


def test_a_youth_who_stops_waiting_for_their_counsellor_keeps_their_language(
        world: World, settings: Settings) -> None:
    mira, mconn = world.counsellor(1, ())
    noor, nconn = world.counsellor(2, ("prs",))
    _, sv = world.youth(language="sv")
    yconn = Conn(YOUTH_NS, "returning")
    world.clock.advance(1)
    back = world.chat.start(yconn, pk(), StartProfile(language="prs"), returning_to=mira.id)
    conv = str(back.reply["conversation"])
    world.chat.choose(yconn, conv, False)  # "anyone now": to the general lane
    assert world.take_next(noor, nconn) == conv
    assert world.take_next(mira, mconn) == sv


def test_the_queue_index_follows_adds_and_removes() -> None:
    q = WaitingQueue()
    q.add("a", 1.0, tag="so")
    q.add("b", 2.0, tag="so", urgent=True)
    q.add("c", 3.0, tag="sv")
    q.add("d", 4.0)
    assert list(q.iter_tagged("general", "so")) == [("b", 0), ("a", 1)]
    assert q.priority("a") == 1 and q.priority("b") == 0 and q.priority("x") is None
    q.remove("b")
    assert list(q.iter_tagged("general", "so")) == [("a", 1)]
    q.remove("a")
    assert list(q.iter_tagged("general", "so")) == []
    assert list(q.iter_tagged("general", "sv")) == [("c", 1)]
    q.add("a", 1.0, tag="so", lane="professional")
    assert list(q.iter_tagged("professional", "so")) == [("a", 1)]
    assert list(q.iter_tagged("general", "so")) == []


def test_the_snapshot_carries_both_languages(world: World) -> None:
    ref, _ = world.counsellor(1, ())
    world.youth(language="ti", page_language="fa")
    world.youth()
    entries = world.chat.staff_queue_snapshot(ref.id)["entries"]
    assert [(e["language"], e["page_language"]) for e in entries] == [("ti", "fa"), (None, None)]

