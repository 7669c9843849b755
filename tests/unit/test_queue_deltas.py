"""Consoles get the queue as one whole view, then changes (docs/protocol.md,
"Queue views"): applying every change a console is sent to its first view
gives exactly the view the server would show it now, through random arrivals,
claims, ends, returning youths, pauses, presence changes, duty and second
consoles; versions only grow on a console; a missed change is repaired by
``queue_sync``; nobody's view holds another counsellor's returning youths.
"""

from __future__ import annotations

import os
import random
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from chatserver import errors
from chatserver.crypto.tokens import b64e
from chatserver.domain.clock import FakeClock
from chatserver.domain.conversations import STAFF_NS, YOUTH_NS, ChatService, StartProfile
from chatserver.domain.events import Conn, Outcome
from chatserver.domain.model import StaffRef, State
from chatserver.queue import view as qv
from chatserver.settings import Settings

# ------------------------------------------------------------ pure diff/apply


def _entry(cid: str, **fields: Any) -> dict[str, Any]:
    return {"conversation": cid, "state": "waiting", "offline": False, **fields}


@given(st.data())
@hsettings(max_examples=120, deadline=None)
def test_a_delta_applied_to_the_old_view_is_the_new_view(data: st.DataObject) -> None:
    pool = [f"c{i}" for i in range(12)]
    old_ids = data.draw(st.lists(st.sampled_from(pool), unique=True, max_size=10))
    kept = [cid for cid in old_ids if data.draw(st.booleans())]
    fresh = data.draw(st.lists(st.sampled_from([p for p in pool if p not in old_ids]),
                               unique=True, max_size=6))
    # New entries go anywhere; kept ones keep their order (as a lane does).
    new_ids = list(kept)
    for cid in fresh:
        new_ids.insert(data.draw(st.integers(0, len(new_ids))), cid)
    flips = {cid: data.draw(st.booleans()) for cid in new_ids}
    old = qv.make_view(3, [_entry(c) for c in old_ids], len(old_ids) + 5, 0)
    new = qv.make_view(9, [_entry(c, offline=flips[c], state="paused" if flips[c] else
                                  "waiting") for c in new_ids], len(new_ids), sum(flips.values()))
    change = qv.delta(old, new)
    assert change is not None
    assert qv.apply(old.snapshot(), change) == new.snapshot()
    assert set(change["removed"]) == set(old_ids) - set(new_ids)


def test_a_field_nobody_knew_of_flows_through_as_changed() -> None:
    old = qv.make_view(1, [_entry("a"), _entry("b")], 2, 0)
    new = qv.make_view(2, [_entry("a"), _entry("b", mood_ring="blue")], 2, 0)
    change = qv.delta(old, new)
    assert change is not None
    assert change["changed"] == [_entry("b", mood_ring="blue")]
    assert change["added"] == [] and change["removed"] == []


def test_a_move_among_kept_entries_is_no_delta_and_a_wrong_base_is_a_gap() -> None:
    old = qv.make_view(1, [_entry("a"), _entry("b")], 2, 0)
    assert qv.delta(old, qv.make_view(2, [_entry("b"), _entry("a")], 2, 0)) is None
    change = qv.delta(old, qv.make_view(2, [_entry("a")], 1, 0))
    assert change is not None
    with pytest.raises(qv.Gap):
        qv.apply({**old.snapshot(), "v": 0}, change)


# ------------------------------------------------------------- the domain


def pk() -> str:
    return b64e(os.urandom(32))


class Consoles:
    """Every console's view as a client keeps it: whole views replace it,
    changes are applied to it; each version must be newer than the last."""

    def __init__(self, chat: ChatService) -> None:
        self.chat = chat
        self.held: dict[Conn, dict[str, Any]] = {}
        self.deltas = self.snapshots = 0

    def take(self, out: Outcome) -> Outcome:
        for e in out.emits:
            for conn in e.to:
                if conn.namespace != STAFF_NS:
                    continue
                staff_id = int(conn.sid.split("-")[0][1:])
                if e.event == "queue":
                    self._check_private(staff_id, e.payload["entries"])
                    assert e.payload["v"] >= self.held.get(conn, {}).get("v", -1)
                    self.held[conn] = e.payload
                    self.snapshots += 1
                elif e.event == "queue_delta":
                    self._check_private(staff_id, [a["entry"] for a in e.payload["added"]]
                                        + e.payload["changed"])
                    assert e.payload["v"] > self.held[conn]["v"]
                    self.held[conn] = qv.apply(self.held[conn], e.payload)  # no gap
                    self.deltas += 1
        return out

    def _check_private(self, staff_id: int, entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            conv = self.chat.conversations[entry["conversation"]]
            if entry["returning"]:
                assert conv.lane == f"personal:{staff_id}"
            assert not conv.lane.startswith("personal:") or conv.lane == f"personal:{staff_id}"

    def check(self, conns: dict[int, list[Conn]]) -> None:
        for staff_id, held_by in conns.items():
            c = self.chat.counsellors[staff_id]
            if not c.on_duty:
                continue
            expected = self.chat.staff_queue_snapshot(staff_id,
                                                      listed=self.chat.listed_max(staff_id))
            for conn in held_by:
                view = dict(self.held[conn])
                del view["v"]
                assert view == expected


STAFF = 3


class Run:
    def __init__(self, settings: Settings, seed: int, make_chat: Any) -> None:
        self.rng = random.Random(seed)
        self.clock = FakeClock()
        # In memory, and through a Redis log with two replicas (conftest.py).
        self.chat: ChatService = make_chat(self.clock, None, settings)
        self.consoles = Consoles(self.chat)
        self.refs = {n: StaffRef(id=n, username=f"user{n}", role="counsellor",
                                 alias=f"Alias {n}", capacity=3) for n in range(1, STAFF + 1)}
        self.conns: dict[int, list[Conn]] = {n: [] for n in self.refs}
        # conversation -> the youth's connection, member id and resume secret
        self.youths: dict[str, tuple[Conn, str, str]] = {}
        self.n = 0
        for n in self.refs:
            self.console(n)
            self.consoles.take(self.chat.duty(self.refs[n], True))

    def console(self, n: int) -> None:
        self.n += 1
        conn = Conn(STAFF_NS, f"s{n}-{self.n}")
        self.conns[n].append(conn)
        self.consoles.take(self.chat.staff_connected(self.refs[n], conn))

    def try_(self, call: Any, *args: Any, **kwargs: Any) -> None:
        try:
            self.consoles.take(call(*args, **kwargs))
        except errors.ChatError:
            pass  # refused: changes nothing

    def step(self) -> None:
        rng, chat = self.rng, self.chat
        waiting = [cid for cid, _ in chat.queue.iter_all()]
        n = rng.choice(list(self.refs))
        conn = self.conns[n][0]
        action = rng.randrange(12)
        if action <= 2:  # arrivals, some urgent, some returning to one of us
            self.n += 1
            yconn = Conn(YOUTH_NS, f"y{self.n}")
            back = rng.choice(list(self.refs)) if rng.random() < 0.25 else None
            profile = StartProfile(language=rng.choice(["sv", "ar", None]),
                                   urgent=rng.random() < 0.2, professional=rng.random() < 0.1)
            try:
                out = chat.start(yconn, pk(), profile, returning_to=back)
            except errors.NobodyOnDuty:
                return
            self.youths[str(out.reply["conversation"])] = (
                yconn, str(out.reply["member"]), str(out.reply["resume"]))
        elif action == 3 and waiting:
            self.try_(chat.claim, self.refs[n], conn, rng.choice(waiting), pk(),
                      offline_ok=True)
        elif action == 4:
            self.try_(chat.claim, self.refs[n], conn, None, pk())
        elif action == 5:
            active = list(chat.counsellors[n].active)
            if active:
                self.try_(chat.end, self.refs[n], conn, rng.choice(active))
        elif action == 6 and waiting:  # a waiting youth leaves or pauses
            cid = rng.choice(waiting)
            yconn = self.youths[cid][0]
            if rng.random() < 0.5:
                self.try_(chat.leave, yconn, cid, "done")
            else:
                self.try_(chat.pause, yconn, cid,
                          chat.conversations[cid].state is not State.PAUSED)
        elif action == 7 and waiting:  # a youth's page goes, or comes back
            cid = rng.choice(waiting)
            yconn, member, secret = self.youths[cid]
            youth = chat.conversations[cid].members[member]
            if youth.conn is not None:
                self.consoles.take(chat.disconnect(yconn))
            else:
                self.try_(chat.resume, yconn, cid, member, secret)
        elif action == 8 and waiting:  # a returning youth takes anyone
            cid = rng.choice(waiting)
            self.try_(chat.choose, self.youths[cid][0], cid, False)
        elif action == 9:  # off and on duty, or a second console
            if rng.random() < 0.5:
                self.try_(chat.duty, self.refs[n], not chat.counsellors[n].on_duty)
            elif len(self.conns[n]) < 3:
                self.console(n)
        elif action == 10:
            self.try_(chat.queue_sync, self.refs[n], conn)
        self.clock.advance(rng.choice([0.1, 0.5, 2.0]))
        self.consoles.take(chat.tick())
        if rng.random() < 0.5:
            self.consoles.take(chat.queue_updates())
            self.consoles.check(self.conns)


@pytest.mark.parametrize("seed", range(12))
def test_deltas_applied_to_the_first_view_give_the_latest_view(settings: Settings,
                                                             seed: int, make_chat: Any) -> None:
    run = Run(replace(settings, presence_grace_secs=1, grace_secs=600,
                      staff_queue_snapshot_max=8), seed, make_chat)
    for _ in range(400):
        run.step()
    run.consoles.take(run.chat.queue_updates())
    run.consoles.check(run.conns)
    # Most pushes were changes, not whole views
    assert run.consoles.deltas > run.consoles.snapshots


def _world(settings: Settings, make_chat: Any) -> tuple[ChatService, FakeClock]:
    clock = FakeClock()
    return make_chat(clock, None, settings), clock


def _staff(n: int) -> tuple[StaffRef, Conn]:
    return (StaffRef(id=n, username=f"user{n}", role="counsellor", alias=f"A{n}",
                     capacity=3), Conn(STAFF_NS, f"s{n}"))


def test_a_change_past_the_listed_part_sends_only_the_counts(settings: Settings,
        make_chat: Any) -> None:
    chat, _ = _world(replace(settings, staff_queue_snapshot_max=5), make_chat)
    ref, conn = _staff(1)
    chat.staff_connected(ref, conn)
    first = chat.duty(ref, True).emits[-1].payload
    for n in range(8):
        chat.start(Conn(YOUTH_NS, f"y{n}"), pk(), StartProfile())
    chat.queue_updates()
    chat.start(Conn(YOUTH_NS, "late"), pk(), StartProfile())
    (push,) = [e for e in chat.queue_updates().emits if e.to == (conn,)]
    assert push.event == "queue_delta"
    assert push.payload["added"] == push.payload["changed"] == push.payload["removed"] == []
    assert push.payload["total"] == 9 and push.payload["v"] > first["v"]


def test_versions_grow_when_a_counsellor_returns_to_the_shared_view(settings: Settings
                                                                    , make_chat: Any) -> None:
    # Their own returning youth makes a view of theirs (a newer version than
    # the shared one); once they claim that youth the shared view, unchanged
    # meanwhile, is theirs again: it comes under a newer version still.
    chat, _ = _world(settings, make_chat)
    ref, conn = _staff(1)
    chat.staff_connected(ref, conn)
    held = chat.duty(ref, True).emits[-1].payload
    back = chat.start(Conn(YOUTH_NS, "y1"), pk(), StartProfile(), returning_to=1)
    (push,) = [e for e in chat.queue_updates().emits if e.to == (conn,)]
    assert push.event == "queue"  # every entry new: the whole view is smaller
    assert push.payload["v"] > held["v"]
    held = push.payload
    chat.claim(ref, conn, str(back.reply["conversation"]), pk())
    (push,) = [e for e in chat.queue_updates().emits if e.to == (conn,)]
    assert push.event == "queue_delta" and push.payload["v"] > held["v"]
    held = qv.apply(held, push.payload)
    assert held["entries"] == [] and held["total"] == 0


def test_queue_sync_sends_the_whole_view_to_that_console_only(settings: Settings,
        make_chat: Any) -> None:
    chat, _ = _world(settings, make_chat)
    ref, conn = _staff(1)
    other = Conn(STAFF_NS, "s1b")
    chat.staff_connected(ref, conn)
    chat.duty(ref, True)
    chat.staff_connected(ref, other)
    chat.start(Conn(YOUTH_NS, "y1"), pk(), StartProfile())
    out = chat.queue_sync(ref, conn)
    assert [(e.event, e.to) for e in out.emits] == [("queue", (conn,))]
    assert len(out.emits[0].payload["entries"]) == 1
    # The round then owes the other console only
    assert [e.to for e in chat.queue_updates().emits] == [(other,)]
    chat.duty(ref, False)
    with pytest.raises(errors.NotOnDuty):
        chat.queue_sync(ref, conn)
    operator = StaffRef(id=9, username="op", role="operator", alias="Op", capacity=0)
    with pytest.raises(errors.NotAllowed):
        chat.queue_sync(operator, Conn(STAFF_NS, "s9"))


def test_without_deltas_every_push_is_a_whole_view(settings: Settings, make_chat: Any) -> None:
    chat, _ = _world(replace(settings, queue_deltas=False), make_chat)
    ref, conn = _staff(1)
    chat.staff_connected(ref, conn)
    chat.duty(ref, True)
    for n in range(3):
        chat.start(Conn(YOUTH_NS, f"y{n}"), pk(), StartProfile())
        events = [e.event for e in chat.queue_updates().emits if e.to == (conn,)]
        assert events == ["queue"]


def test_at_capacity_the_view_lists_the_front_and_counts_the_rest(settings: Settings,
        make_chat: Any) -> None:
    chat, _ = _world(replace(settings, staff_queue_at_capacity_max=2), make_chat)
    ref, conn = _staff(1)
    ref = replace(ref, capacity=1)
    chat.staff_connected(ref, conn)
    held = chat.duty(ref, True).emits[-1].payload
    for n in range(5):
        chat.start(Conn(YOUTH_NS, f"y{n}"), pk(), StartProfile())
    (push,) = [e for e in chat.queue_updates().emits if e.to == (conn,)]
    held = push.payload if push.event == "queue" else qv.apply(held, push.payload)
    first = held["entries"][0]["conversation"]
    assert len(held["entries"]) == 5
    chat.claim(ref, conn, first, pk())  # now full: the front only, the rest counted
    (push,) = [e for e in chat.queue_updates().emits if e.to == (conn,)]
    held = push.payload if push.event == "queue" else qv.apply(held, push.payload)
    assert len(held["entries"]) == 2 and held["total"] == 4
    chat.end(ref, conn, first)  # room again: the whole list at once
    (push,) = [e for e in chat.queue_updates().emits if e.to == (conn,)]
    held = push.payload if push.event == "queue" else qv.apply(held, push.payload)
    assert len(held["entries"]) == 4 and held["total"] == 4
