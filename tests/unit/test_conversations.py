"""Domain tests for the conversation service, a fake clock: in memory, and the
same tests through a real Redis log with two replicas (tests/unit/conftest.py)."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pytest

from chatserver import errors
from chatserver.crypto.tokens import b64e
from chatserver.domain import conversations
from chatserver.domain.chat import rounds as queue_round
from chatserver.domain.clock import FakeClock
from chatserver.domain.conversations import STAFF_NS, YOUTH_NS, ChatService, StartProfile
from chatserver.domain.events import Conn, Outcome
from chatserver.domain.model import StaffRef, State
from chatserver.domain.relay import BoxIn
from chatserver.domain.stats import hour_band
from chatserver.settings import Settings


class Sink:
    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def count(self, dimension: str, value: str) -> None:
        self.counts[(dimension, value)] = self.counts.get((dimension, value), 0) + 1


def pk() -> str:
    return b64e(os.urandom(32))


def ct() -> str:
    return b64e(os.urandom(256 + 16))


def nonce() -> str:
    return b64e(os.urandom(24))


def staff(n: int, capacity: int = 3) -> StaffRef:
    return StaffRef(id=n, username=f"user{n}", role="counsellor", alias=f"Alias {n}",
                    capacity=capacity)


class World:
    def __init__(self, settings: Settings, make_chat: Any) -> None:
        self.clock = FakeClock()
        self.sink = Sink()
        # A ChatService, or the same rules behind a Redis log (conftest.py).
        self.chat: ChatService = make_chat(self.clock, self.sink, settings)
        self.settings = settings

    def counsellor(self, n: int, capacity: int = 3, on: bool = True) -> tuple[StaffRef, Conn]:
        ref, conn = staff(n, capacity), Conn(STAFF_NS, f"s{n}")
        self.chat.staff_connected(ref, conn)
        if on:
            self.chat.duty(ref, True)
        return ref, conn

    def youth(self, n: int, **profile: object) -> tuple[Conn, dict[str, object]]:
        conn = Conn(YOUTH_NS, f"y{n}")
        out = self.chat.start(conn, pk(), StartProfile(**profile))  # type: ignore[arg-type]
        return conn, out.reply

    def pair(self) -> tuple[Conn, dict[str, object], StaffRef, Conn, dict[str, object]]:
        ref, sconn = self.counsellor(1)
        yconn, y = self.youth(1)
        c = self.chat.claim(ref, sconn, str(y["conversation"]), pk()).reply
        return yconn, y, ref, sconn, c


@pytest.fixture
def world(settings: Settings, make_chat: Any) -> World:
    return World(settings, make_chat)


def events(out: Outcome, name: str) -> list[tuple[Conn, dict[str, object]]]:
    return [(to, e.payload) for e in out.emits if e.event == name for to in e.to]


def view_pushes(out: Outcome) -> list[tuple[Conn, dict[str, object]]]:
    """What a round sends consoles about their queue view: a whole view or a change."""
    return [(to, e.payload) for e in out.emits if e.event in ("queue", "queue_delta")
            for to in e.to if to.namespace == STAFF_NS]


def test_closed_when_nobody_on_duty_and_nothing_is_kept(world: World) -> None:
    world.counsellor(1, on=False)
    with pytest.raises(errors.NobodyOnDuty) as exc:
        world.youth(1, gender="girl")
    assert exc.value.info["alternatives"] and "sv" in exc.value.info["hours"]
    assert len(world.chat.queue) == 0 and not world.chat.conversations
    # Only the unmet demand is counted, by hour-of-week band: no profile.
    band = hour_band(world.clock.now(), world.settings.stats_timezone)
    assert world.sink.counts == {("unmet_closed", band): 1}


def test_start_queues_counts_profile_and_positions(world: World) -> None:
    world.counsellor(1)
    _, a = world.youth(1, gender="girl", age_band="16-17")
    _, b = world.youth(2)
    assert (a["position"], b["position"]) == (1, 2)
    assert b["eta_secs"] > a["eta_secs"] > 0  # type: ignore[operator]
    assert world.sink.counts[("gender", "girl")] == 1
    assert world.sink.counts[("gender", "unsaid")] == 1
    assert world.sink.counts[("contacts", "youth")] == 2


def test_urgent_goes_first(world: World) -> None:
    world.counsellor(1)
    world.youth(1)
    _, urgent = world.youth(2, urgent=True)
    assert urgent["position"] == 1


def test_one_connection_one_conversation(world: World) -> None:
    world.counsellor(1)
    conn, _ = world.youth(1)
    with pytest.raises(errors.AlreadyStarted):
        world.chat.start(conn, pk(), StartProfile())


def test_exactly_one_claim_wins(world: World) -> None:
    _, y = (world.counsellor(99), world.youth(1))[1]
    claimers = [world.counsellor(n) for n in range(1, 21)]
    winners, losers = 0, 0
    for ref, conn in claimers:
        try:
            world.chat.claim(ref, conn, str(y["conversation"]), pk())
            winners += 1
        except errors.AlreadyClaimed:
            losers += 1
    assert (winners, losers) == (1, 19)


def test_claim_needs_duty_and_capacity(world: World) -> None:
    ref, conn = world.counsellor(1, capacity=1)
    _, y1 = world.youth(1)
    _, y2 = world.youth(2)
    world.chat.claim(ref, conn, str(y1["conversation"]), pk())
    with pytest.raises(errors.AtCapacity):
        world.chat.claim(ref, conn, str(y2["conversation"]), pk())
    off, off_conn = world.counsellor(2, on=False)
    with pytest.raises(errors.NotOnDuty):
        world.chat.claim(off, off_conn, str(y2["conversation"]), pk())
    assert world.chat.queue.position(str(y2["conversation"])) == 1


def test_take_next_and_empty_queue(world: World) -> None:
    ref, conn = world.counsellor(1)
    _, y = world.youth(1)
    reply = world.chat.claim(ref, conn, None, pk()).reply
    assert reply["conversation"] == y["conversation"] and reply["epoch"] == 1
    with pytest.raises(errors.QueueEmpty):
        world.chat.claim(ref, conn, None, pk())


def test_claim_sends_roster_to_youth(world: World) -> None:
    ref, sconn = world.counsellor(1)
    yconn, y = world.youth(1)
    out = world.chat.claim(ref, sconn, str(y["conversation"]), pk())
    rosters = events(out, "roster")
    assert [to for to, _ in rosters] == [yconn]
    members = rosters[0][1]["members"]
    assert {m["role"] for m in members} == {"youth", "counsellor"}  # type: ignore[attr-defined]
    aliases = {m["alias"] for m in members}  # type: ignore[attr-defined]
    assert "Alias 1" in aliases and "user1" not in aliases  # the alias, never the account


def test_relay_rules(world: World) -> None:
    yconn, y, _, sconn, c = world.pair()
    conv, cm = str(y["conversation"]), str(c["member"])
    box = [BoxIn(cm, nonce(), ct())]
    with pytest.raises(errors.StaleEpoch):
        world.chat.send(yconn, conv, 0, 1, box)
    with pytest.raises(errors.OutOfOrder):
        world.chat.send(yconn, conv, 1, 2, box)
    with pytest.raises(errors.UnknownRecipient):
        world.chat.send(yconn, conv, 1, 1, [BoxIn(str(y["member"]), nonce(), ct())])
    with pytest.raises(errors.UnknownRecipient):
        world.chat.send(yconn, conv, 1, 1, box + box)
    out = world.chat.send(yconn, conv, 1, 1, box)
    boxes = events(out, "box")
    assert [to for to, _ in boxes] == [sconn] and boxes[0][1]["from"] == y["member"]
    with pytest.raises(errors.Replayed):
        world.chat.send(yconn, conv, 1, 1, box)
    with pytest.raises(errors.NotMember):
        world.chat.send(Conn(YOUTH_NS, "intruder"), conv, 1, 2, box)


def test_alone_in_queue_cannot_send(world: World) -> None:
    world.counsellor(1)
    yconn, y = world.youth(1)
    with pytest.raises(errors.WrongState):
        world.chat.send(yconn, str(y["conversation"]), 0, 1, [])


def test_backlog_is_bounded(settings: Settings, make_chat: Any) -> None:
    import dataclasses

    world = World(dataclasses.replace(settings, backlog_max_boxes=3), make_chat)
    yconn, y, _, _, c = world.pair()
    conv, cm = str(y["conversation"]), str(c["member"])
    for seq in range(1, 4):
        world.chat.send(yconn, conv, 1, seq, [BoxIn(cm, nonce(), ct())])
    with pytest.raises(errors.BacklogFull):
        world.chat.send(yconn, conv, 1, 4, [BoxIn(cm, nonce(), ct())])
    world.chat.delivered(Conn(STAFF_NS, "s1"), conv, str(y["member"]), 2)
    world.chat.send(yconn, conv, 1, 4, [BoxIn(cm, nonce(), ct())])


def test_resume_redelivers_unacked_in_order_once(world: World) -> None:
    yconn, y, _, sconn, c = world.pair()
    conv = str(y["conversation"])
    world.chat.disconnect(yconn)
    for seq in range(1, 11):
        out = world.chat.send(sconn, conv, 1, seq, [BoxIn(str(y["member"]), nonce(), ct())])
        assert events(out, "box") == []  # the youth is offline: buffered only
    new = Conn(YOUTH_NS, "y1-again")
    out = world.chat.resume(new, conv, str(y["member"]), str(y["resume"]))
    seqs = [p["seq"] for _, p in events(out, "box")]
    assert seqs == list(range(1, 11))
    world.chat.delivered(new, conv, str(c["member"]), 10)
    again = world.chat.resume(Conn(YOUTH_NS, "y1-third"), conv, str(y["member"]), str(y["resume"]))
    assert events(again, "box") == []


def test_resume_refuses_wrong_secret_and_other_staff(world: World) -> None:
    _, y, _, _, c = world.pair()
    conv = str(y["conversation"])
    with pytest.raises(errors.BadResume):
        world.chat.resume(Conn(YOUTH_NS, "x"), conv, str(y["member"]), b64e(os.urandom(32)))
    with pytest.raises(errors.BadResume):  # a youth connection cannot take a staff seat
        world.chat.resume(Conn(YOUTH_NS, "x"), conv, str(c["member"]), str(c["resume"]))
    with pytest.raises(errors.BadResume):
        world.chat.resume(Conn(STAFF_NS, "x"), conv, str(c["member"]), str(c["resume"]),
                          staff=staff(2))


def test_grace_expiry_ends_with_timed_out(world: World) -> None:
    yconn, y, _, sconn, _c = world.pair()
    conv = str(y["conversation"])
    world.chat.send(sconn, conv, 1, 1, [BoxIn(str(y["member"]), nonce(), ct())])
    world.chat.disconnect(yconn)
    world.clock.advance(world.settings.grace_secs - 1)
    assert world.chat.tick().emits == []
    world.clock.advance(2)
    out = world.chat.tick()
    ended = events(out, "state")
    assert ended == [(sconn, {"conversation": conv, "state": "ended", "reason": "timed_out"})]
    assert conv not in world.chat.conversations
    assert any(a.action == "conversation_end" and a.detail["count"] == 1 for a in out.audits)
    with pytest.raises(errors.UnknownConversation):
        world.chat.resume(Conn(YOUTH_NS, "late"), conv, str(y["member"]), str(y["resume"]))


def test_reconnect_within_grace_cancels_timeout(world: World) -> None:
    yconn, y, _, _, _ = world.pair()
    conv = str(y["conversation"])
    world.chat.disconnect(yconn)
    world.clock.advance(1)
    world.chat.resume(Conn(YOUTH_NS, "back"), conv, str(y["member"]), str(y["resume"]))
    world.clock.advance(world.settings.grace_secs * 2)
    world.chat.tick()
    assert world.chat.conversations[conv].state is State.ACTIVE


def test_pause_blocks_youth_sends_and_expires(world: World) -> None:
    yconn, y, _, sconn, c = world.pair()
    conv = str(y["conversation"])
    out = world.chat.pause(yconn, conv, True)
    assert events(out, "state") == [(sconn, {"conversation": conv, "state": "paused"})]
    with pytest.raises(errors.WrongState):
        world.chat.send(yconn, conv, 1, 1, [BoxIn(str(c["member"]), nonce(), ct())])
    world.chat.send(sconn, conv, 1, 1, [BoxIn(str(y["member"]), nonce(), ct())])
    world.chat.pause(yconn, conv, False)
    world.chat.send(yconn, conv, 1, 1, [BoxIn(str(c["member"]), nonce(), ct())])
    world.chat.pause(yconn, conv, True)
    world.clock.advance(world.settings.pause_max_secs + 1)
    out = world.chat.tick()
    assert events(out, "state")[0][1]["reason"] == "timed_out"


def test_waiting_youth_pause_keeps_place_and_is_skipped_by_take_next(world: World) -> None:
    ref, sconn = world.counsellor(1)
    y1conn, y1 = world.youth(1)
    _, y2 = world.youth(2)
    world.chat.pause(y1conn, str(y1["conversation"]), True)
    assert world.chat.queue.position(str(y1["conversation"])) == 1
    with pytest.raises(errors.WrongState):
        world.chat.claim(ref, sconn, str(y1["conversation"]), pk())
    reply = world.chat.claim(ref, sconn, None, pk()).reply
    assert reply["conversation"] == y2["conversation"]


def test_panic_exit_reason_and_abandoned_count(world: World) -> None:
    yconn, y, _, sconn, _ = world.pair()
    out = world.chat.leave(yconn, str(y["conversation"]), "panic")
    assert (sconn, {"conversation": y["conversation"], "state": "ended",
                    "reason": "panic_exit"}) in events(out, "state")
    world.counsellor(2)
    wconn, _w = world.youth(5)
    world.chat.leave(wconn, str(_w["conversation"]), "done")
    assert world.chat.ops_snapshot()["abandoned_today"] == 1


def test_closed_page_is_its_own_reason_not_panic(world: World) -> None:
    # A reload or a closed tab must not reach the counsellor as a quick exit.
    yconn, y, _, sconn, _ = world.pair()
    out = world.chat.leave(yconn, str(y["conversation"]), "closed")
    assert (sconn, {"conversation": y["conversation"], "state": "ended",
                    "reason": "page_closed"}) in events(out, "state")
    ends = [a for a in out.audits if a.action == "conversation_end"]
    assert [a.detail["reason"] for a in ends] == ["page_closed"]
    assert str(y["conversation"]) not in world.chat.conversations


def test_counsellor_timeout_requeues_youth_first(world: World) -> None:
    yconn, y, _, sconn, _ = world.pair()
    world.counsellor(2)
    world.youth(2)
    conv = str(y["conversation"])
    world.chat.disconnect(sconn)
    world.clock.advance(world.settings.grace_secs + 1)
    out = world.chat.tick()
    assert world.chat.conversations[conv].state is State.WAITING
    assert world.chat.queue.position(conv) == 1
    roster = events(out, "roster")
    assert roster[0][0] == yconn and roster[0][1]["epoch"] == 2


def test_queue_updates_push_changed_positions(world: World) -> None:
    ref, sconn = world.counsellor(1)
    _c1, y1 = world.youth(1)
    c2, _y2 = world.youth(2)
    world.chat.queue_updates()
    world.chat.claim(ref, sconn, str(y1["conversation"]), pk())
    out = world.chat.queue_updates()
    pushes = events(out, "queue")
    youth_push = [p for to, p in pushes if to == c2]
    assert youth_push and youth_push[0]["position"] == 1
    staff_push = [p for to, p in events(out, "queue_delta") if to == sconn]
    assert staff_push and staff_push[0]["total"] == 1
    assert world.chat.queue_updates().emits == []  # nothing changed since


def test_a_round_push_goes_stale_when_its_youth_leaves_the_queue(world: World) -> None:
    # The transport sends a round in slices and asks before each push
    # (Context.apply): a claim in between must win.
    ref, sconn = world.counsellor(1)
    world.youth(1)
    c2, y2 = world.youth(2)
    world.youth(3)
    world.chat.claim(ref, sconn, None, pk())
    pushes = world.chat.queue_updates().emits
    to_c2 = next(e for e in pushes if c2 in e.to)
    to_staff = next(e for e in pushes if sconn in e.to)
    assert world.chat.queue_push_current(to_c2) and world.chat.queue_push_current(to_staff)
    world.chat.claim(ref, sconn, str(y2["conversation"]), pk())
    assert not world.chat.queue_push_current(to_c2)
    assert world.chat.queue_push_current(to_staff)  # a view; the next round corrects it


def test_a_round_push_goes_stale_when_a_reply_told_newer_figures(world: World) -> None:
    # A returning youth who stops waiting for their counsellor is answered with
    # their new place at once; the round's older figure must not follow it.
    ref1, _s1 = world.counsellor(1)
    ref2, s2 = world.counsellor(2)
    _c1, y1 = world.youth(1)
    _c3, y3 = world.youth(3)
    world.youth(4)
    conn = Conn(YOUTH_NS, "r1")
    conv_id = str(world.chat.start(conn, pk(), StartProfile(),
                                   returning_to=ref1.id).reply["conversation"])
    world.chat.queue_updates()
    world.chat.claim(ref2, s2, str(y1["conversation"]), pk())
    world.clock.advance(20)
    world.chat.claim(ref2, s2, str(y3["conversation"]), pk())  # estimates change
    push = next(e for e in world.chat.queue_updates().emits
                if e.payload.get("conversation") == conv_id)
    assert world.chat.queue_push_current(push)
    reply = world.chat.choose(conn, conv_id, wait=False).reply
    assert (reply["position"], push.payload["position"]) == (2, 1)
    assert not world.chat.queue_push_current(push)


def test_round_sends_counsellors_their_view_first(world: World) -> None:
    # The transport sends a round in slices; a view sent after a later claim
    # would show that youth as still waiting.
    ref, sconn = world.counsellor(1)
    world.youth(1)
    world.youth(2)
    world.chat.claim(ref, sconn, None, pk())
    emits = world.chat.queue_updates().emits
    assert emits[0].to == (sconn,) and emits[0].event in ("queue", "queue_delta")
    assert all("position" in e.payload for e in emits[1:])


def test_far_back_positions_are_pushed_less_often(settings: Settings, make_chat: Any) -> None:
    world = World(replace(settings, queue_position_min_interval_secs=5.0,
                          queue_position_far_interval_secs=30.0), make_chat)
    ref, sconn = world.counsellor(1, capacity=10)
    youths = [world.youth(n) for n in range(1, 27)]
    world.chat.queue_updates()
    world.chat.claim(ref, sconn, str(youths[0][1]["conversation"]), pk())  # everyone moves up

    def pushed_places() -> list[int]:
        return sorted(int(str(p["position"])) for to, p in events(world.chat.queue_updates(),
                                                                   "queue")
                      if to.namespace == YOUTH_NS)

    assert pushed_places() == [1, 2, 3]  # the front hears at once
    world.clock.advance(6)
    assert pushed_places() == list(range(4, 21))  # near the front: every 5 s
    world.clock.advance(6)
    assert pushed_places() == []  # far back waits longer
    world.clock.advance(20)
    assert pushed_places() == list(range(21, 26))


def test_far_back_pushes_are_spread_over_rounds(settings: Settings,
                                               monkeypatch: pytest.MonkeyPatch,
        make_chat: Any) -> None:
    # Youths who arrived together fall due together; each round looks at a
    # window of the far part from a cursor that goes round it, so they are
    # spread out and every one is reached.
    monkeypatch.setattr(queue_round, "FAR_SCAN_PER_ROUND", 4)
    world = World(replace(settings, queue_position_min_interval_secs=5.0,
                          queue_position_far_interval_secs=30.0), make_chat)
    ref, sconn = world.counsellor(1, capacity=10)
    youths = [world.youth(n) for n in range(1, 33)]
    world.chat.queue_updates()
    world.chat.claim(ref, sconn, str(youths[0][1]["conversation"]), pk())
    world.clock.advance(31)
    rounds = []
    for _ in range(5):
        rounds.append(sorted(int(str(p["position"]))
                             for to, p in events(world.chat.queue_updates(), "queue")
                             if to.namespace == YOUTH_NS and int(str(p["position"])) > 20))
    assert all(len(r) <= 4 for r in rounds)  # spread out
    everyone = sorted(p for r in rounds for p in r)
    assert everyone == list(range(21, 32))  # each reached, once
    assert rounds[-1] == []


def test_far_back_windows_per_lane_and_a_still_queue_stops_costing(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, make_chat: Any) -> None:
    # Each lane has its own cursor; a lane that shrinks below it is still
    # scanned whole; once a pass since the last change is done and nothing is
    # held back by a gap, rounds do nothing.
    monkeypatch.setattr(queue_round, "FAR_SCAN_PER_ROUND", 3)
    world = World(replace(settings, queue_position_min_interval_secs=5.0,
                          queue_position_far_interval_secs=30.0), make_chat)
    ref, sconn = world.counsellor(1, capacity=20)
    general = [world.youth(n) for n in range(1, 28)]  # far part: places 21-27
    for n in range(28, 54):  # professional lane, far part: places 21-26
        world.chat.start(Conn(YOUTH_NS, f"p{n}"), pk(), StartProfile(professional=True))
    world.chat.queue_updates()
    for _ in range(4):  # the front of the general lane moves on
        world.chat.claim(ref, sconn, str(general.pop(0)[1]["conversation"]), pk())
    world.clock.advance(31)
    pushed: list[tuple[str, int]] = []
    rounds = 0
    while True:
        out = world.chat.queue_updates()
        if not out.emits:
            break
        rounds += 1
        for e in out.emits:
            if "position" in e.payload and int(str(e.payload["position"])) > 20:
                lane = "p" if e.to[0].sid.startswith("p") else "g"
                pushed.append((lane, int(str(e.payload["position"]))))
        assert rounds < 10
    # every far youth of both lanes once (claims changed everyone's estimate),
    # the general lane's whole far part although it shrank below its cursor
    assert sorted(p for lane, p in pushed if lane == "g") == [21, 22, 23]  # 23 left
    assert sorted(p for lane, p in pushed if lane == "p") == list(range(21, 27))
    assert world.chat.queue_updates().emits == []
    assert not world.chat._push_owed  # a still queue: the next round returns at once


def test_an_emptied_personal_lane_leaves_no_cursor_behind(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue_round, "NEAR_FRONT_OF_QUEUE", 1)
    monkeypatch.setattr(queue_round, "FAR_SCAN_PER_ROUND", 1)
    ref, sconn = world.counsellor(1, capacity=5)
    for n in range(3):
        world.chat.start(Conn(YOUTH_NS, f"r{n}"), pk(), StartProfile(), returning_to=ref.id)
    world.chat.queue_updates()
    lane = conversations.personal_lane(ref.id)
    assert lane in world.chat._far_scan  # two far places, one looked at a round
    for _ in range(3):
        world.chat.claim(ref, sconn, None, pk())
    world.chat.queue_updates()
    assert lane not in world.chat.queue.lanes() and lane not in world.chat._far_scan


def test_counsellor_at_capacity_sees_the_queue_less_often(settings: Settings,
        make_chat: Any) -> None:
    world = World(replace(settings, queue_snapshot_at_capacity_secs=5.0), make_chat)
    ref, sconn = world.counsellor(1, capacity=1)

    def snapshot_sent() -> bool:
        return any(to == sconn for to, _ in view_pushes(world.chat.queue_updates()))

    _c1, y1 = world.youth(1)
    assert snapshot_sent()
    world.chat.claim(ref, sconn, str(y1["conversation"]), pk())  # now at capacity
    world.clock.advance(1)
    world.youth(2)
    assert not snapshot_sent()  # at capacity: held back...
    world.clock.advance(2)
    world.youth(3)
    assert not snapshot_sent()
    world.clock.advance(2)
    assert snapshot_sent()  # ...until 5 s have passed, without a new change
    assert not snapshot_sent()  # and not again for the same state
    world.chat.end(ref, sconn, str(y1["conversation"]))  # below capacity again
    world.youth(4)
    assert snapshot_sent()  # the next change at once


def test_common_staff_snapshot_is_one_event_for_all(world: World) -> None:
    ref1, s1 = world.counsellor(1)
    _ref2, s2 = world.counsellor(2)
    _ref3, s3 = world.counsellor(3)
    world.youth(1)
    returning = world.chat.start(Conn(YOUTH_NS, "y2"), pk(), StartProfile(), returning_to=ref1.id)
    out = world.chat.queue_updates()
    staff_events = [e for e in out.emits if e.event in ("queue", "queue_delta")
                    and e.to[0].namespace == STAFF_NS]
    own = [e for e in staff_events if e.to == (s1,)]
    common = [e for e in staff_events if set(e.to) == {s2, s3}]
    assert len(staff_events) == 2 and own and common

    def listed(payload: dict[str, object]) -> list[object]:
        entries = payload.get("entries") or [a["entry"] for a in payload["added"]]  # type: ignore[attr-defined]
        return [x["conversation"] for x in entries]  # type: ignore[attr-defined]
    returning_id = returning.reply["conversation"]
    assert returning_id in listed(own[0].payload)
    assert returning_id not in listed(common[0].payload)
    assert common[0].payload["total"] == 1


def test_duty_goes_off_after_staff_disconnect_grace(world: World) -> None:
    _ref, sconn = world.counsellor(1)
    assert world.chat.is_open()
    world.chat.disconnect(sconn)
    assert not world.chat.is_open()
    world.clock.advance(world.settings.grace_secs + 1)
    out = world.chat.tick()
    assert [a.action for a in out.audits] == ["duty_off"]
    assert world.chat.counsellors[1].on_duty is False


def _snapshots_to(out: Outcome, conn: Conn) -> int:
    return sum(1 for to, _ in view_pushes(out) if to == conn)


def test_an_active_youths_pause_toggles_send_no_queue_snapshot(world: World) -> None:
    yconn, y, _ref, _sconn, _c = world.pair()
    _other, other_conn = world.counsellor(2)
    world.chat.queue_updates()
    sent = 0
    for i in range(20):
        world.chat.pause(yconn, str(y["conversation"]), i % 2 == 0)
        world.clock.advance(0.25)
        sent += _snapshots_to(world.chat.queue_updates(), other_conn)
    assert sent == 0  # nothing in the queue changed


def test_a_waiting_youths_pause_toggles_reach_each_counsellor_at_most_once_a_gap(
        settings: Settings, make_chat: Any) -> None:
    world = World(replace(settings, queue_snapshot_min_gap_secs=1.0), make_chat)
    _ref, sconn = world.counsellor(1)
    yconn, y = world.youth(1)
    world.chat.queue_updates()
    sent = 0
    # Ten seconds of a pause toggle twice a second, rounds every 50 ms
    for step in range(200):
        if step % 10 == 0:
            world.chat.pause(yconn, str(y["conversation"]), step % 20 == 0)
        world.clock.advance(0.05)
        sent += _snapshots_to(world.chat.queue_updates(), sconn)
    assert 5 <= sent <= 10  # the latest state still arrives, at most once a second
