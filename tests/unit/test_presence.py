"""Presence and the handover's life on the server, with a fake clock
(domain/presence.py, domain/handover.py): a youth is shown offline only after
presence_grace_secs of one continuous drop; take next passes them by, also
when it looks for a language; a transfer's sealed handover is given once and
dropped at once on a decline or a time-out."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pytest

from chatserver import errors
from chatserver.crypto.tokens import b64e
from chatserver.domain.clock import FakeClock
from chatserver.domain.conversations import STAFF_NS, YOUTH_NS, ChatService, StartProfile
from chatserver.domain.events import Conn, Outcome
from chatserver.domain.model import HandoverBox, StaffRef
from chatserver.settings import Settings


def pk() -> str:
    return b64e(os.urandom(32))


class World:
    def __init__(self, settings: Settings, make_chat: Any) -> None:
        self.settings = replace(settings, presence_grace_secs=5, grace_secs=60)
        self.clock = FakeClock()
        # In memory, and through a Redis log with two replicas (conftest.py).
        self.chat: ChatService = make_chat(self.clock, None, self.settings)

    def counsellor(self, n: int, languages: tuple[str, ...] = ()) -> tuple[StaffRef, Conn]:
        ref = StaffRef(id=n, username=f"user{n}", role="counsellor", alias=f"A{n}",
                       capacity=3, languages=languages)
        conn = Conn(STAFF_NS, f"s{n}")
        self.chat.staff_connected(ref, conn)
        self.chat.duty(ref, True)
        return ref, conn

    def youth(self, n: int, language: str | None = None) -> tuple[Conn, dict[str, object]]:
        conn = Conn(YOUTH_NS, f"y{n}")
        return conn, self.chat.start(conn, pk(), StartProfile(language=language)).reply


@pytest.fixture
def world(settings: Settings, make_chat: Any) -> World:
    return World(settings, make_chat)


def presence(out: Outcome) -> list[dict[str, object]]:
    return [e.payload for e in out.emits if e.event == "presence"]


def test_only_one_continuous_drop_counts(world: World) -> None:
    ref, sconn = world.counsellor(1)
    yconn, y = world.youth(1)
    conv, member = str(y["conversation"]), str(y["member"])
    world.chat.claim(ref, sconn, conv, pk())
    world.chat.disconnect(yconn)
    world.clock.advance(3)
    back = Conn(YOUTH_NS, "back")
    world.chat.resume(back, conv, member, str(y["resume"]))
    world.chat.disconnect(back)
    world.clock.advance(3)  # 6 s since the first drop, 3 s since the second
    assert presence(world.chat.tick()) == []
    world.clock.advance(2)
    assert presence(world.chat.tick()) == [
        {"conversation": conv, "member": member, "online": False,
         "since": int((world.clock.now() - 5) * 1000)}]
    # Back again: the counsellor is told at once
    out = world.chat.resume(Conn(YOUTH_NS, "again"), conv, member, str(y["resume"]))
    assert presence(out) == [{"conversation": conv, "member": member, "online": True}]
    assert conv not in world.chat.away


def test_take_next_passes_an_offline_youth_also_by_language(world: World) -> None:
    ref, sconn = world.counsellor(1, languages=("ar",))
    gone_conn, gone = world.youth(1, language="ar")
    _, other = world.youth(2, language="ar")
    world.chat.disconnect(gone_conn)
    world.clock.advance(6)
    world.chat.tick()
    assert world.chat.staff_queue_snapshot(ref.id)["offline"] == 1
    taken = world.chat.claim(ref, sconn, None, pk()).reply
    assert taken["conversation"] == other["conversation"]
    with pytest.raises(errors.QueueEmpty):
        world.chat.claim(ref, sconn, None, pk())
    with pytest.raises(errors.YouthOffline):
        world.chat.claim(ref, sconn, str(gone["conversation"]), pk())


def _offer(world: World) -> tuple[str, StaffRef, Conn]:
    first, c1 = world.counsellor(1)
    second, c2 = world.counsellor(2)
    _, y = world.youth(1)
    conv = str(y["conversation"])
    world.chat.claim(first, c1, conv, pk())
    sender_pk, receiver_pk = pk(), pk()
    world.chat.register_handover_key(first, c1, sender_pk)
    world.chat.register_handover_key(second, c2, receiver_pk)
    box = HandoverBox(sender_pk, receiver_pk, b64e(os.urandom(24)), b64e(os.urandom(272)))
    out = world.chat.offer_transfer(first, c1, conv, second.id, box)
    assert [e.payload["handover"] for e in out.emits if e.event == "transfer_offer"] == [True]
    return conv, second, c2


def test_a_time_out_drops_the_handover(world: World) -> None:
    conv, _, _ = _offer(world)
    offer = world.chat.conversations[conv].transfer
    assert offer is not None and offer.handover is not None
    world.clock.advance(world.settings.transfer_offer_secs + 1)
    world.chat.tick()
    assert world.chat.conversations[conv].transfer is None and offer.handover is None


def test_a_decline_drops_the_handover(world: World) -> None:
    conv, second, c2 = _offer(world)
    offer = world.chat.conversations[conv].transfer
    world.chat.answer_transfer(second, c2, conv, False, None)
    assert world.chat.conversations[conv].transfer is None
    assert offer is not None and offer.handover is None


def test_an_accept_gives_the_handover_once(world: World) -> None:
    conv, second, c2 = _offer(world)
    offer = world.chat.conversations[conv].transfer
    assert offer is not None and offer.handover is not None
    sealed = offer.handover.public()
    reply = world.chat.answer_transfer(second, c2, conv, True, pk()).reply
    assert reply["handover"] == sealed and offer.handover is None


def test_a_handover_key_belongs_to_its_connection(world: World) -> None:
    ref, conn = world.counsellor(1)
    with pytest.raises(errors.NotAllowed):
        world.chat.register_handover_key(ref, Conn(STAFF_NS, "not-mine"), pk())
    key = pk()
    world.chat.register_handover_key(ref, conn, key)
    other, _ = world.counsellor(2)
    assert world.chat.colleagues(other).reply["colleagues"][0]["handover_pk"] == key
    world.chat.disconnect(conn)
    assert world.chat.colleagues(other).reply["colleagues"] == []
    assert world.chat.counsellors[ref.id].handover_keys == {}


def test_a_counsellor_seat_is_shown_to_the_youth_until_it_reattaches(world: World) -> None:
    """Mirrors the youth's presence: a console gone presence_grace_secs is shown
    offline to the youth (never counted as a youth away in the queue), and a
    re-attach under a new key says it is back with the new roster."""
    ref, sconn = world.counsellor(1)
    yconn, y = world.youth(1)
    conv = str(y["conversation"])
    seat = world.chat.claim(ref, sconn, conv, pk()).reply
    world.chat.disconnect(sconn)
    world.clock.advance(4)
    assert presence(world.chat.tick()) == []  # a short drop shows nothing
    world.clock.advance(1)
    out = world.chat.tick()
    assert [(e.payload, e.to) for e in out.emits if e.event == "presence"] == [
        ({"conversation": conv, "member": seat["member"], "online": False,
          "since": int((world.clock.now() - 5) * 1000)}, (yconn,))]
    assert conv not in world.chat.away  # the youth is here; the queue is not told
    # The youth resuming meanwhile learns it from the reply.
    world.chat.disconnect(yconn)
    yback = Conn(YOUTH_NS, "yback")
    assert world.chat.resume(yback, conv, str(y["member"]), str(y["resume"])
                             ).reply["counsellor_online"] is False

    back = Conn(STAFF_NS, "reloaded")
    connected = world.chat.staff_connected(ref, back)
    assert [e.payload for e in connected.emits if e.event == "seats"] == [
        {"conversations": [{"conversation": conv, "pseudonym": seat["pseudonym"],
                            "state": "active"}]}]
    out = world.chat.reattach(ref, back, conv, pk())
    assert presence(out) == [{"conversation": conv, "member": seat["member"], "online": True}]
    rosters = [e for e in out.emits if e.event == "roster"]
    assert len(rosters) == 1 and rosters[0].to == (yback,)
    assert rosters[0].payload["reattached"] == seat["member"]
    assert rosters[0].payload["epoch"] == out.reply["epoch"] == 2
    # The old grace deadline no longer applies: the seat stays.
    world.clock.advance(120)
    world.chat.tick()
    assert seat["member"] in world.chat.conversations[conv].members
