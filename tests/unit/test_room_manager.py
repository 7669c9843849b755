"""RoomIndexedManager (chatserver/transport/manager.py) must behave exactly like
python-socketio's stock AsyncManager, only without scanning every room on
disconnect (decision 0005).

The subclass copies the library's disconnect bookkeeping and relies on the
manager's room layout; these tests are what guards it when python-socketio
changes (pyproject.toml pins the minor version for the same reason):

- the differential test drives both managers with the same random operations
  and compares their whole state after every step;
- the fingerprint test fails when the library methods the subclass copies or
  relies on change at all, even in a patch release;
- the cost test counts room lookups, so it fails if disconnect or get_rooms
  fall back to the library's scan.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import random
from collections import Counter
from collections.abc import Callable, Hashable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import socketio
from socketio.base_manager import BaseManager

from chatserver.transport.manager import RoomIndexedManager

NAMESPACES = ("/", "/staff")
# Custom room names. "s1"… are also sids the fake server hands out, so rooms
# named like a sid (connected, not yet connected, or in the other namespace)
# are exercised too.
ROOM_NAMES = ("a", "b", "c", "s1", "s2", "s4", "s7", "s9", "s12")
# Attributes of ours that the stock manager does not have (our index).
OWN_ATTRIBUTES = frozenset({"_custom_rooms"})


class FakeServer:
    """What a manager uses of its server: eio.generate_id() for new sids, and
    packet_class.json in set_server. Each manager gets its own, and both hand
    out the same sequence of ids."""

    def __init__(self) -> None:
        counter = itertools.count()
        self.eio = SimpleNamespace(generate_id=lambda: f"s{next(counter)}")
        self.packet_class = SimpleNamespace(json=json)


def make(cls: type[Any]) -> Any:
    manager = cls()
    manager.set_server(FakeServer())
    return manager


def ack(*args: Any) -> None:
    """One callback object for both managers, so callbacks compare equal."""


def plain(value: Any) -> Any:
    """Manager state as comparable values, keeping order. itertools.count (the
    ack id counter in callbacks) has no value equality; compare its repr."""
    if isinstance(value, itertools.count):
        return repr(value)
    if isinstance(value, dict) or hasattr(value, "items"):
        return [(k, plain(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def state(manager: Any) -> dict[str, Any]:
    """Every attribute of the manager (rooms, eio_to_sid, callbacks,
    pending_connect, pending_disconnect and whatever a new release adds), but
    the server object and our own index."""
    return {
        name: plain(value)
        for name, value in vars(manager).items()
        if name != "server" and name not in OWN_ATTRIBUTES
    }


async def call(manager: Any, name: str, *args: Any) -> tuple[str, Any]:
    try:
        result = getattr(manager, name)(*args)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:  # the library raises on some misuse; both must agree
        return ("raised", type(exc).__name__)
    return ("returned", result)


Op = Callable[[Any], Any]


def choose_op(rng: random.Random, stock: Any, known_sids: list[str]) -> tuple[str, Op]:
    """One random operation, chosen from the stock manager's state."""
    ns = rng.choice(NAMESPACES)
    connected = [sid for sid in stock.rooms.get(ns, {}).get(None, {})]
    sid = rng.choice(connected) if connected and rng.random() < 0.9 else (
        rng.choice(known_sids) if known_sids and rng.random() < 0.7 else "nobody")
    kind = rng.choices(
        ["connect", "pre_connect", "finish_connect", "enter", "leave", "close",
         "disconnect", "disconnect_only", "ack"],
        weights=[5, 1, 2, 8, 4, 2, 5, 1, 3],
    )[0]
    pending = [s for s in stock.pending_connect.get(ns, []) if stock.is_pre_connected(s, ns)]
    if kind == "finish_connect" and not pending:
        # connect() of a sid that is not pre-connected starts a new connection,
        # and the library itself then leaks an un-awaited coroutine when that
        # fails; the server never does it.
        kind = "connect"

    if kind in ("connect", "pre_connect"):
        # A fresh engine.io sid, or now and then one already connected (the
        # library refuses it: pre_connect returns None).
        eio = f"e{rng.randrange(10_000)}" if rng.random() < 0.9 else "e-dup"
        full = kind == "connect"

        async def connect(m: Any) -> list[tuple[str, Any]]:
            out = [await call(m, "pre_connect", eio, ns)]
            status, new_sid = out[0]
            if full and status == "returned" and new_sid is not None:
                out.append(await call(m, "connect", new_sid, ns))
            return out

        return kind, connect

    if kind == "finish_connect":
        target = rng.choice(pending)

        async def finish(m: Any) -> list[tuple[str, Any]]:
            return [await call(m, "connect", target, ns)]

        return kind, finish

    if kind == "enter":
        room: Hashable = rng.choice(ROOM_NAMES + tuple(known_sids[-3:]))

        async def enter(m: Any) -> list[tuple[str, Any]]:
            return [await call(m, "enter_room", sid, ns, room)]

        return kind, enter

    if kind == "leave":
        mine = stock.get_rooms(sid, ns)
        choices: list[Hashable] = [*mine, *ROOM_NAMES[:3]]
        room = None if rng.random() < 0.05 else rng.choice(choices)  # None: rare misuse

        async def leave(m: Any) -> list[tuple[str, Any]]:
            return [await call(m, "leave_room", sid, ns, room)]

        return kind, leave

    if kind == "close":
        existing = [r for r in stock.rooms.get(ns, {}) if r is not None]
        room = rng.choice(existing + list(ROOM_NAMES)) if existing else rng.choice(ROOM_NAMES)

        async def close(m: Any) -> list[tuple[str, Any]]:
            return [await call(m, "close_room", room, ns)]

        return kind, close

    if kind in ("disconnect", "disconnect_only"):
        pre = kind == "disconnect"

        async def disconnect(m: Any) -> list[tuple[str, Any]]:
            out = [await call(m, "pre_disconnect", sid, ns)] if pre else []
            out.append(await call(m, "disconnect", sid, ns))
            return out

        return kind, disconnect

    async def generate_ack(m: Any) -> list[tuple[str, Any]]:
        return [await call(m, "_generate_ack_id", sid, ack)]

    return kind, generate_ack


def assert_index_invariant(ours: Any) -> None:
    """The index lists only rooms that exist, and every other room (not None)
    holds at most its own sid: so disconnect and get_rooms miss nothing, and
    nothing outlives its room."""
    for ns, custom in ours._custom_rooms.items():
        assert custom, f"empty index entry left for {ns!r}"
        assert set(custom) <= set(ours.rooms.get(ns, {})), "index lists a room that is gone"
    for ns, table in ours.rooms.items():
        custom = ours._custom_rooms.get(ns, {})
        for room, members in table.items():
            if room is not None and room not in custom:
                assert set(members) <= {room}, f"room {room!r} in {ns!r} is not indexed"


@pytest.mark.parametrize("seed", range(6))
async def test_behaves_like_the_stock_manager(seed: int) -> None:
    rng = random.Random(seed)
    stock, ours = make(socketio.AsyncManager), make(RoomIndexedManager)
    known_sids: list[str] = []
    kinds: Counter[str] = Counter()

    for step in range(1_000):
        kind, op = choose_op(rng, stock, known_sids)
        kinds[kind] += 1
        expected, got = await op(stock), await op(ours)
        where = f"seed {seed}, step {step}, {kind}"
        assert got == expected, where
        known_sids.extend(
            r[1] for r in expected if r[0] == "returned" and isinstance(r[1], str)
            and r[1].startswith("s") and r[1] not in known_sids
        )
        assert state(ours) == state(stock), where
        assert_index_invariant(ours)
        live = sorted({sid for table in stock.rooms.values() for members in table.values()
                       for sid in members})
        if step % 100 != 99:  # every sid now and then, a sample otherwise
            live = rng.sample(live, min(len(live), 6))
        for ns in NAMESPACES:
            for sid in [*live, *known_sids[-3:], "nobody"]:
                # Same rooms; the order is the room table's in the library and
                # unspecified by socket.io, so compare sorted.
                rooms = ours.get_rooms(sid, ns)
                assert sorted(rooms) == sorted(stock.get_rooms(sid, ns)), where
                assert len(rooms) == len(set(rooms)), where

    # The run really exercised what it claims to (a rng change must not
    # quietly turn this into a test of nothing).
    assert min(kinds.values()) >= 10, kinds
    assert len(known_sids) >= 100


# The library code the subclass copies (basic_disconnect, get_rooms) or whose
# layout and behaviour it relies on. A change here, even in a patch release
# within the pin, needs a reading of the new code against
# chatserver/transport/manager.py; then update the fingerprint.
LIBRARY_FINGERPRINTS = {
    "__init__": "bfee992d912fe9a4",
    "pre_connect": "bfdba4c0c8f1bd8a",
    "basic_disconnect": "2933b50bc4b2ea7b",
    "basic_enter_room": "3f509586d2d7f47e",
    "basic_leave_room": "e27f3eea06d1c6a6",
    "basic_close_room": "1d81a80fe1cac5a5",
    "get_rooms": "56a1017f85af9f91",
    "is_sid_room": "e9a9393a969c85fd",
}


def test_library_code_the_subclass_copies_is_unchanged() -> None:
    changed = sorted(
        name for name, fingerprint in LIBRARY_FINGERPRINTS.items()
        if hashlib.sha256(inspect.getsource(getattr(BaseManager, name)).encode())
        .hexdigest()[:16] != fingerprint
    )
    assert changed == [], (
        "python-socketio's BaseManager changed; re-check RoomIndexedManager "
        f"(chatserver/transport/manager.py) against: {changed}"
    )


# ----------------------------------------------------------------- cost


class MembershipCounter:
    """Counts membership tests on room objects (bidicts): the library's scan
    does one per room in the namespace."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, room_class: type[Any]) -> None:
        self.count = 0
        original = room_class.__contains__

        def counting(room: Any, key: object) -> bool:
            self.count += 1
            return bool(original(room, key))

        monkeypatch.setattr(room_class, "__contains__", counting)

    def during(self, action: Callable[[], object]) -> int:
        before = self.count
        action()
        return self.count - before


class ScanCountingTable(dict[Hashable, Any]):
    """A namespace's room table that counts whole-table walks."""

    scans = 0

    def copy(self) -> dict[Hashable, Any]:
        self.scans += 1
        return dict(self)

    def items(self) -> Any:
        self.scans += 1
        return super().items()

    def keys(self) -> Any:
        self.scans += 1
        return super().keys()

    def values(self) -> Any:
        self.scans += 1
        return super().values()

    def __iter__(self) -> Iterator[Hashable]:
        self.scans += 1
        return super().__iter__()


def populated(cls: type[Any], connections: int) -> tuple[Any, list[str]]:
    manager = make(cls)
    sids = []
    for i in range(connections):
        # The synchronous halves of AsyncManager.pre_connect/connect.
        sid = BaseManager.pre_connect(manager, f"e{i}", "/")
        BaseManager.connect(manager, sid, "/")
        sids.append(sid)
    # A few custom rooms, as an application might have; the first client is
    # in two of them.
    for room in ("x", "y", "z"):
        manager.basic_enter_room(sids[-1], "/", room)
    manager.basic_enter_room(sids[0], "/", "x")
    manager.basic_enter_room(sids[0], "/", "y")
    manager.rooms["/"] = ScanCountingTable(manager.rooms["/"])
    return manager, sids


def disconnect_cost(
    cls: type[Any], connections: int, counter: MembershipCounter
) -> tuple[int, int, int]:
    """(membership tests in get_rooms, membership tests in disconnect, walks
    of the room table) for one client of a namespace with that many."""
    manager, sids = populated(cls, connections)
    table = manager.rooms["/"]
    assert sorted(manager.get_rooms(sids[0], "/")) == sorted([sids[0], "x", "y"])
    table.scans = 0
    get_rooms_tests = counter.during(lambda: manager.get_rooms(sids[0], "/"))
    manager.pre_disconnect(sids[0], "/")
    disconnect_tests = counter.during(lambda: manager.basic_disconnect(sids[0], "/"))
    scans = table.scans
    assert manager.get_rooms(sids[0], "/") == []
    assert not manager.is_connected(sids[0], "/")
    assert sids[0] not in manager.rooms["/"]
    assert sids[0] not in manager.rooms["/"]["y"] and sids[-1] in manager.rooms["/"]["y"]
    return get_rooms_tests, disconnect_tests, scans


def test_disconnect_cost_does_not_grow_with_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The rooms' class (a bidict in 5.18), whichever it is.
    room_class = type(populated(socketio.AsyncManager, 1)[0].rooms["/"][None])
    counter = MembershipCounter(monkeypatch, room_class)

    small = disconnect_cost(RoomIndexedManager, 10, counter)
    large = disconnect_cost(RoomIndexedManager, 2_000, counter)
    assert small == large
    assert large[2] == 0, "the room table was walked"
    assert large[0] <= 6 and large[1] <= 6

    # The probe itself works: the stock manager's scan shows up in it.
    stock_small = disconnect_cost(socketio.AsyncManager, 10, counter)
    stock_large = disconnect_cost(socketio.AsyncManager, 2_000, counter)
    assert stock_large[0] > 2_000 > stock_small[0]
    assert stock_large[1] > 2_000 > stock_small[1]
    assert stock_large[2] > 0


def test_plugs_into_the_server() -> None:
    manager = RoomIndexedManager()
    server = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager)
    assert server.manager is manager
