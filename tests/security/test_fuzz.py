"""Property-based fuzzing of every socket.io event of ``/youth``, ``/staff`` and
``/liaison``, and of the binary-packet path (docs/protocol.md "Calls, acks and
errors").

Properties, for every call a hostile client can make:

- exactly one reply arrives, and it is a dict: ``{"ok": false, "error": code}``
  with a documented code that is never ``internal``, or (for the rare payload
  that happens to be valid) an ``ok: true`` reply of the documented shape;
- a failed call changes nothing (conversations, queue, duty, watchers,
  connections, sessions, audit log);
- no call from a stranger touches a neighbouring conversation that was
  running before the fuzzing began, and that conversation still works after it;
- an event above ``max_event_bytes`` closes only the connection that sent it;
- a payload with bytes in it (python-socketio sends it as a binary event), a
  binary-event or binary-ack header announcing any number of attachments, or a
  bare binary frame closes that connection and leaves nothing kept.

Set-up. The server runs in a background thread with its own event loop, and
the fuzzing clients are python-socketio ``AsyncClient``s living in that same
loop; the synchronous hypothesis tests hand each call to it with
``run_coroutine_threadsafe``. (The synchronous ``socketio.Client`` would need
``requests`` and ``websocket-client``, which are not project dependencies.)
Real sockets everywhere: only the state snapshots read the server's memory.

Fuzzing clients:
- ``stateless``: a youth connection without a conversation (an accepted
  ``start`` is left again at once);
- ``youth`` and ``counsellor``: the two members of a fuzzed conversation,
  re-created whenever a call ended or paused it;
- ``operator``: a staff connection that is not a counsellor;
- ``liaison``: a ``/liaison`` connection without a valid invite.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import threading
import tomllib
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import socketio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatserver.client.reference import ReferenceClient
from chatserver.domain.model import Conversation, State
from chatserver.errors import all_codes
from chatserver.settings import REPO_ROOT
from tests.conftest import LiveServer, free_port, make_settings, start_server
from tests.helpers.waiting import eventually

T = TypeVar("T")

ALL_CODES = frozenset(all_codes())
CALL_TIMEOUT = 3.0
GENEROUS = {"rate_other_per_min": 100_000, "rate_other_burst": 100_000,
            "rate_send_per_min": 100_000, "rate_send_burst": 100_000,
            "rate_starts_per_hour": 100_000}
EXAMPLES_PER_EVENT = 100
FUZZ = settings(max_examples=EXAMPLES_PER_EVENT, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture,
                                       HealthCheck.filter_too_much])

# The documented payload keys: (required, optional).
YOUTH_EVENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "status": ((), ()),
    "start": (("kx_pk",), ("profile", "page_language")),
    "resume": (("conversation", "member", "resume"), ()),
    "send": (("conversation", "epoch", "seq", "boxes"), ()),
    "delivered": (("conversation", "from", "seq"), ()),
    "typing": (("conversation", "active"), ()),
    "pause": (("conversation", "paused"), ()),
    "leave": (("conversation", "reason"), ()),
}
STAFF_EVENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "duty": (("on",), ()),
    "claim": (("conversation", "kx_pk"), ()),
    "take_next": (("kx_pk",), ()),
    "end": (("conversation",), ()),
    "resume": YOUTH_EVENTS["resume"],
    "send": YOUTH_EVENTS["send"],
    "delivered": YOUTH_EVENTS["delivered"],
    "typing": YOUTH_EVENTS["typing"],
    "ops_watch": (("on",), ()),
    "handover_key": (("kx_pk",), ()),
    "queue_sync": ((), ()),
    "reattach": (("conversation", "kx_pk"), ()),
}
LIAISON_EVENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "join": (("invite", "kx_pk", "mac"), ()),
    "resume": YOUTH_EVENTS["resume"],
    "send": YOUTH_EVENTS["send"],
    "delivered": YOUTH_EVENTS["delivered"],
    "typing": YOUTH_EVENTS["typing"],
    "leave": (("conversation",), ()),
}
EVENTS = {"/youth": YOUTH_EVENTS, "/staff": STAFF_EVENTS, "/liaison": LIAISON_EVENTS}
CLIENTS = {"/youth": ("stateless", "youth"), "/staff": ("counsellor", "operator"),
           "/liaison": ("liaison",)}
# The members of the fuzzed conversation are drawn twice as often as the
# strangers: their calls get further into the domain rules.
WHO = {"/youth": st.sampled_from(["youth", "youth", "stateless"]),
       "/staff": st.sampled_from(["counsellor", "counsellor", "operator"]),
       # A liaison without a valid invite: a stranger to every conversation.
       "/liaison": st.just("liaison")}
# Which client may ever get ok: true for which event. Anything else is a hole:
# e.g. a stranger's typing or send accepted for someone else's conversation.
OK_ALLOWED = {
    "stateless": {"status", "start"},
    "youth": {"status", "send", "delivered", "typing", "pause", "leave"},
    "counsellor": {"duty", "send", "delivered", "typing", "end", "handover_key", "queue_sync",
                   "reattach"},
    "operator": {"ops_watch"},
    "liaison": set(),  # nothing succeeds without an invite's secret
}
# The documented success replies: (required keys, optional keys).
OK_SHAPE: dict[str, tuple[set[str], set[str]]] = {
    "status": ({"ok", "open", "hours", "alternatives", "emergency", "profile"}, set()),
    "start": ({"ok", "conversation", "member", "resume", "position", "eta_secs"}, set()),
    "resume": ({"ok", "state", "role", "epoch", "members"},
               {"position", "eta_secs", "youth_online", "counsellor_online"}),
    "reattach": ({"ok", "conversation", "member", "resume", "state", "pseudonym", "epoch",
                  "members", "seq", "youth_online"}, set()),
    "send": ({"ok", "seq"}, set()),
    "delivered": ({"ok"}, set()),
    "typing": ({"ok"}, set()),
    "pause": ({"ok", "state"}, set()),
    "leave": ({"ok"}, set()),
    "duty": ({"ok", "on"}, set()),
    "claim": ({"ok", "conversation", "member", "resume", "state", "pseudonym", "epoch",
               "members", "youth_online"}, set()),
    "take_next": ({"ok", "conversation", "member", "resume", "state", "pseudonym", "epoch",
                   "members", "youth_online"}, set()),
    "handover_key": ({"ok"}, set()),
    "queue_sync": ({"ok"}, set()),
    "end": ({"ok"}, set()),
    "ops_watch": ({"ok"}, set()),
}
# Names the python-socketio server treats specially; see
# test_reserved_event_names_are_unknown_events (a known bug), so the general
# unknown-event fuzzing leaves them out.
RESERVED = {"connect", "disconnect"}

_PROFILE_LISTS = tomllib.loads(
    (REPO_ROOT / "config" / "default.toml").read_text(encoding="utf-8"))["service"]["profile"]


def b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def rand_b64(size: int) -> str:
    return b64e(os.urandom(size))


# A usable public key for the calls that must get past validation (all-zero
# bytes, "A" * 43, is a low-order point and refused as bad_payload).
SOME_PK = b64e(bytes(range(1, 33)))


# ------------------------------------------------------------------ strategies
#
# Values that depend on the running server (ids, the current epoch, the next
# seq) are written as sentinels ("@conv", "@seq", ...) and filled in by
# World.resolve just before the call.

def b64(size: int) -> st.SearchStrategy[str]:
    return st.binary(min_size=size, max_size=size).map(b64e)


HEX_ID = st.binary(min_size=16, max_size=16).map(bytes.hex)
MEMBERS = ["@self", "@peer", "@youth", "@counsellor", "@n_youth", "@n_counsellor"]
SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-2**70, max_value=2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**32, 2**53 + 1, 2**63, 2**64, -2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
    st.binary(max_size=32),
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=12)
NOT_STR = JSONISH.filter(lambda v: not isinstance(v, str))

GOOD_BOX = st.fixed_dictionaries({
    "to": st.just("@peer"), "nonce": b64(24),
    "ct": st.sampled_from([272, 528, 1040]).flatmap(b64)})
GOOD: dict[str, st.SearchStrategy[Any]] = {
    # The fuzzed conversation itself, so calls get past validation into the
    # domain rules (SEMANTIC below swaps in the neighbour's or an unknown one).
    "conversation": st.just("@conv"),
    "member": st.sampled_from(MEMBERS),
    "from": st.sampled_from(MEMBERS),
    "resume": b64(32),
    "kx_pk": b64(32),
    "invite": b64(32),
    "mac": b64(32),
    "epoch": st.just("@epoch"),
    "seq": st.just("@seq"),
    "boxes": st.just("@boxes") | st.lists(GOOD_BOX, min_size=1, max_size=1),
    "active": st.booleans(),
    "paused": st.booleans(),
    "on": st.booleans(),
    "reason": st.sampled_from(["done", "panic", "closed"]),
    "profile": st.fixed_dictionaries({}, optional={
        "language": st.sampled_from(_PROFILE_LISTS["languages"]),
        "age_band": st.sampled_from(_PROFILE_LISTS["age_bands"]),
        "gender": st.sampled_from(_PROFILE_LISTS["genders"]),
        "municipality": st.sampled_from(_PROFILE_LISTS["municipalities"]),
        "topic": st.sampled_from(_PROFILE_LISTS["topics"]),
        "urgent": st.booleans(),
    }),
    "page_language": st.sampled_from(_PROFILE_LISTS["page_languages"]),
}

BAD_ID = st.one_of(
    st.sampled_from(["", "0" * 31, "0" * 33, "g" * 32, "@CONV", " " * 32]),
    HEX_ID.map(str.upper), HEX_ID.map(lambda s: s[:-1] + "z"), HEX_ID.map(lambda s: s + "\n"),
    HEX_ID.map(lambda s: s.encode()), NOT_STR)


def bad_b64(size: int) -> st.SearchStrategy[Any]:
    good = b64(size)
    return st.one_of(
        b64(size - 1), b64(size + 1), b64(0), good.map(lambda s: s + "="),
        good.map(lambda s: s[:-2] + "+/"), good.map(lambda s: s + "AA"),
        good.map(lambda s: s[:-1] + "é"), good.map(lambda s: " " + s[1:]),
        st.just("A" * 10_000), st.just("A" * (4 * size // 3 + 2)),
        good.map(lambda s: s.encode()), NOT_STR)


BAD_UINT = st.sampled_from([
    -1, -(2**63), 2**32, 2**63, 2**64, 2**100, 1.0, 1.5, float("nan"), "1", "0x1",
    True, False, None, [], {}, [1], "@seq_last", "@seq_gap", "@epoch_next", "@epoch_prev"])
BAD_BOOL = st.sampled_from([0, 1, "true", "false", "", None, [], {}, [True], 1.0])
BAD_REASON = st.sampled_from(["", "DONE", "quit", "panic ", "timed_out", "youth_left", 1, None,
                              "d" * 100, ["done"], {"reason": "done"}, True])


def _box_mutants() -> st.SearchStrategy[Any]:
    box = GOOD_BOX
    return st.one_of(
        box.map(lambda b: {**b, "to": "@self"}),
        box.map(lambda b: {**b, "to": "@n_youth"}),
        box.map(lambda b: {**b, "to": "@n_counsellor"}),
        st.tuples(box, BAD_ID).map(lambda t: {**t[0], "to": t[1]}),
        st.tuples(box, bad_b64(24)).map(lambda t: {**t[0], "nonce": t[1]}),
        st.tuples(box, st.one_of(
            b64(271), b64(273), b64(256), b64(16), b64(0), b64(8208 + 256), b64(300),
            st.just("A" * 365), st.just("!" * 364), NOT_STR)).map(
                lambda t: {**t[0], "ct": t[1]}),
        box.map(lambda b: {k: v for k, v in b.items() if k != "ct"}),
        box.map(lambda b: {**b, "extra": 1}),
        JSONISH)


BAD_BOXES = st.one_of(
    st.just([]),
    st.lists(GOOD_BOX, min_size=2, max_size=6),  # a box too many, or over max_members-1
    GOOD_BOX.map(lambda b: [b, b]),  # the same recipient twice
    st.lists(_box_mutants(), min_size=1, max_size=2),
    st.tuples(GOOD_BOX, _box_mutants()).map(list),
    NOT_STR.filter(lambda v: not isinstance(v, list)),
    st.just("@boxes_self"),
)
BAD_PROFILE = st.one_of(
    st.sampled_from([[], "sv", 1, True,
                     {"language": "xx"}, {"lang": "sv"}, {"urgent": "yes"}, {"urgent": 1},
                     {"language": "sv" * 40}, {"language": ["sv"]}, {"gender": "Girl"},
                     {"municipality": "stockholm"}, {"topic": ""},
                     {f"k{i}": i for i in range(40)}]),
    st.dictionaries(st.sampled_from(["language", "age_band", "gender", "municipality", "topic",
                                     "urgent", "name", "phone"]), JSONISH, min_size=1,
                    max_size=4))
BAD: dict[str, st.SearchStrategy[Any]] = {
    "conversation": BAD_ID, "member": BAD_ID, "from": BAD_ID,
    "resume": bad_b64(32), "kx_pk": bad_b64(32), "invite": bad_b64(32), "mac": bad_b64(32),
    "epoch": BAD_UINT, "seq": BAD_UINT | st.sampled_from([0, -1, 2**64]),
    "boxes": BAD_BOXES,
    "active": BAD_BOOL, "paused": BAD_BOOL, "on": BAD_BOOL,
    "reason": BAD_REASON, "profile": BAD_PROFILE,
    "page_language": st.sampled_from(["", "SV", "sv_SE", "s", "svenska", "sv-", "sv-SE-x-1",
                                      "ar\n", " fa", 1, True, ["sv"], {"lang": "sv"}]),
}

# Well-formed values that are wrong for the server's state: they get past
# validation and exercise the domain rules (replayed, stale_epoch, ...).
SEMANTIC: dict[str, st.SearchStrategy[Any]] = {
    # Shaped like a language code, but no youth catalog: unknown_language.
    "page_language": st.sampled_from(["xx", "de", "ku", "fa-AF"]),
    "conversation": st.sampled_from(["@n_conv", "0" * 32]),
    "member": st.sampled_from(["@n_youth", "@n_counsellor", "0" * 32]),
    "from": st.sampled_from(["@self", "@n_youth", "@n_counsellor", "0" * 32]),
    "epoch": st.sampled_from(["@epoch_next", "@epoch_prev", 0, 2**32 - 1]),
    "seq": st.sampled_from(["@seq_last", "@seq_gap", 0, 2**53, 2**63 - 1]),
    "boxes": st.one_of(
        st.sampled_from([[], "@boxes_self"]),
        GOOD_BOX.map(lambda b: [b, b]),
        GOOD_BOX.map(lambda b: [{**b, "to": "@n_youth"}]),
        GOOD_BOX.map(lambda b: [{**b, "to": "0" * 32}]),
        GOOD_BOX.map(lambda b: [b, {**b, "to": "@self"}]),
        GOOD_BOX.map(lambda b: [b, {**b, "to": "@n_counsellor"}])),
    "paused": st.booleans(),
    "on": st.booleans(),
}

# A payload strategy yields (payload, exact): exact is the one error code the
# payload must get, or None when several documented codes are possible.
Drawn = tuple[Any, str | None]


def payloads(keys: tuple[tuple[str, ...], tuple[str, ...]]) -> st.SearchStrategy[Drawn]:
    required, optional = keys
    every = required + optional

    @st.composite
    def valid(draw: st.DrawFn) -> dict[str, Any]:
        out = {k: draw(GOOD[k]) for k in required}
        for k in optional:
            if draw(st.booleans()):
                out[k] = draw(GOOD[k])
        return out

    @st.composite
    def one_broken(draw: st.DrawFn) -> Drawn:
        out = draw(valid())
        semantic = [k for k in every if k in SEMANTIC]
        kinds = ["extra_key"] + (["bad_value"] * 2 if every else []) + (
            ["drop_key"] if required else []) + (["semantic"] * 3 if semantic else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "semantic":
            key = draw(st.sampled_from(semantic))
            out[key] = draw(SEMANTIC[key])
            return out, None
        if kind == "bad_value":
            key = draw(st.sampled_from(every))
            out[key] = draw(BAD[key])
            return out, None
        if kind == "drop_key":
            del out[draw(st.sampled_from(required))]
            return out, "bad_payload"
        extra = draw(st.text(max_size=12).filter(lambda k: k not in every))
        out[extra] = draw(JSONISH)
        return out, "bad_payload"

    keyed = st.one_of(
        st.fixed_dictionaries({k: JSONISH for k in every}),
        st.dictionaries(st.sampled_from([*every, "ok", "error", "__proto__", "constructor"]),
                        JSONISH, max_size=len(every) + 2),
    )
    # one_of has no weights: listing a strategy twice draws it twice as often.
    return st.one_of(
        JSONISH.map(lambda p: (p, None)),
        keyed.map(lambda p: (p, None)),
        one_broken(), one_broken(), one_broken(),
        valid().map(lambda p: (p, None)),
    )


PAYLOADS = {ns: {event: payloads(keys) for event, keys in events.items()}
            for ns, events in EVENTS.items()}
UNKNOWN_NAMES = st.one_of(
    st.sampled_from(["", " ", "message", "Status", "status ", "STATUS", "*", "__init__",
                     "on_connect", "dispatch", "trigger_event", "emit", "box", "queue",
                     "roster", "state", "ops", "connect_error", "ping", "a" * 5000,
                     "\x00", "send\x00", "claim", "duty", "take_next", "end", "ops_watch",
                     "start", "pause", "leave", "status"]),
    st.text(max_size=40)).filter(lambda name: name not in RESERVED)


# ------------------------------------------------------------------ the world

class Raw:
    """A bare python-socketio client: sends whatever it is given."""

    def __init__(self, server: LiveServer, namespace: str, cookie: str | None = None) -> None:
        self.server, self.namespace, self.cookie = server, namespace, cookie
        self.sio: socketio.AsyncClient | None = None

    async def connect(self) -> None:
        await self.close()
        headers = {"Origin": self.server.origin}
        if self.cookie:
            headers["Cookie"] = self.cookie
        self.sio = socketio.AsyncClient(reconnection=False, logger=False, engineio_logger=False,
                                        handle_sigint=False)
        await self.sio.connect(self.server.url, headers=headers, transports=["websocket"],
                               namespaces=[self.namespace], wait_timeout=5)

    @property
    def connected(self) -> bool:
        return (self.sio is not None and self.sio.connected
                and self.namespace in self.sio.namespaces)

    async def call(self, event: Any, payload: Any, wait_secs: float = CALL_TIMEOUT) -> Any:
        assert self.sio is not None
        return await self.sio.call(event, payload, namespace=self.namespace, timeout=wait_secs)

    async def emit(self, event: Any, payload: Any) -> None:
        assert self.sio is not None
        await self.sio.emit(event, payload, namespace=self.namespace)

    async def close(self) -> None:
        if self.sio is not None:
            with contextlib.suppress(Exception):
                await self.sio.disconnect()
            self.sio = None


MISSING = object()  # no ack arrived
CLOSED = object()  # the server closed the connection (a binary event)


def _has_bytes(value: Any) -> bool:
    if isinstance(value, bytes | bytearray):
        return True
    if isinstance(value, dict):
        return any(_has_bytes(k) or _has_bytes(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_bytes(v) for v in value)
    return False


@dataclass
class Outcome:
    payload: Any
    reply: Any
    neighbour_before: Any
    neighbour_after: Any
    rest_before: Any
    rest_after: Any


@dataclass(repr=False)
class World:
    loop: asyncio.AbstractEventLoop
    server: LiveServer
    runner: Any
    n_youth: ReferenceClient
    n_counsellor: ReferenceClient
    n_conv: str
    clients: dict[str, Raw]
    counsellor_staff_id: int
    neighbour_initial: Any = None
    conv: str = ""
    youth_member: str = ""
    counsellor_member: str = ""
    calls: int = 0
    log: list[str] = field(default_factory=list)

    def __repr__(self) -> str:  # hypothesis prints it with every failing example
        return f"World({self.server.url})"

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def chat(self) -> Any:
        return self.server.ctx.chat

    # -- state

    def _members(self) -> tuple[str, str]:
        n = self.chat.conversations[self.n_conv]
        youth = next(m.id for m in n.members.values() if m.role.value == "youth")
        staff = next(m.id for m in n.members.values() if m.role.value == "counsellor")
        return youth, staff

    async def ensure(self) -> None:
        """Every client connected, the fuzz counsellor on duty, and the fuzzed
        conversation active with its two members and a small backlog."""
        for client in self.clients.values():
            if not client.connected:
                await client.connect()
        c = self.chat.counsellors[self.counsellor_staff_id]
        if not c.on_duty:
            assert (await self.clients["counsellor"].call("duty", {"on": True}))["ok"]
        conv: Conversation | None = self.chat.conversations.get(self.conv)
        healthy = (conv is not None and conv.state is State.ACTIVE and len(conv.members) == 2
                   and all(m.conn is not None and m.inbox_count < 100
                           for m in conv.members.values()))
        if healthy:
            return
        if conv is not None:
            reply = await self.clients["youth"].call(
                "leave", {"conversation": self.conv, "reason": "done"})
            assert reply["ok"], reply
        started = await self.clients["youth"].call("start", {"kx_pk": rand_b64(32)})
        assert started["ok"], started
        self.conv, self.youth_member = started["conversation"], started["member"]
        claimed = await self.clients["counsellor"].call(
            "claim", {"conversation": self.conv, "kx_pk": rand_b64(32)})
        assert claimed["ok"], claimed
        self.counsellor_member = claimed["member"]

    @staticmethod
    def _conv_state(c: Conversation) -> tuple[Any, ...]:
        members = tuple(sorted(
            (m.id, m.role.value, m.alias, m.kx_pk, m.last_seq, m.inbox_count, m.conn,
             m.offline_since) for m in c.members.values()))
        return (c.state.value, c.epoch, c.message_count, c.paused_from, c.ended_reason,
                members)

    async def snapshot(self) -> tuple[Any, Any]:
        """(the neighbour's conversation, everything else a call may change)."""
        ctx, chat = self.server.ctx, self.chat
        neighbour = self._conv_state(chat.conversations[self.n_conv])
        head = await ctx.store.audit_head()
        rest = (
            frozenset((cid, self._conv_state(c)) for cid, c in chat.conversations.items()
                      if cid != self.n_conv),
            len(chat.queue),
            frozenset((sid, c.on_duty, frozenset(c.active), frozenset(c.conns))
                      for sid, c in chat.counsellors.items()),
            frozenset(ctx.ops_watchers), len(ctx.conns), len(ctx.sessions),
            head.seq if head else 0,
        )
        return neighbour, rest

    def resolve(self, value: Any, who: str) -> Any:
        if isinstance(value, dict):
            return {k: self.resolve(v, who) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, who) for v in value]
        if not isinstance(value, str) or not value.startswith("@"):
            return value
        me_youth = who in ("stateless", "youth")
        me, peer = ((self.youth_member, self.counsellor_member) if me_youth
                    else (self.counsellor_member, self.youth_member))
        conv = self.chat.conversations.get(self.conv)
        member = conv.members.get(me) if conv else None
        last = member.last_seq if member else 0
        epoch = conv.epoch if conv else 0
        n_youth, n_counsellor = self._members()

        def box(to: str) -> dict[str, str]:
            return {"to": to, "nonce": rand_b64(24), "ct": rand_b64(272)}

        table: dict[str, Any] = {
            "@conv": self.conv, "@n_conv": self.n_conv, "@self": me, "@peer": peer,
            "@youth": self.youth_member, "@counsellor": self.counsellor_member,
            "@n_youth": n_youth, "@n_counsellor": n_counsellor,
            "@epoch": epoch, "@epoch_next": epoch + 1, "@epoch_prev": epoch - 1,
            "@seq": last + 1, "@seq_last": last, "@seq_gap": last + 2,
            "@boxes": [box(peer)],
            "@boxes_self": [box(me)],
            "@boxes_twice": [box(peer), box(peer)],
            "@boxes_and_self": [box(peer), box(me)],
            "@boxes_to_neighbour": [box(n_youth)],
            "@boxes_to_nobody": [box("0" * 32)],
        }
        return table.get(value, value)

    # -- one fuzzed call

    async def exercise(self, who: str, event: Any, drawn: Any) -> Outcome:
        await self.ensure()
        payload = self.resolve(drawn, who)
        n_before, before = await self.snapshot()
        if _has_bytes(payload):
            # python-socketio sends bytes as a binary event, which the server
            # refuses by closing the connection: sent from a throw-away client
            # of the same kind so the world's clients stay as they are.
            reply = await self._binary_call(who, event, payload)
            n_after, after = await self.snapshot()
            self.calls += 1
            return Outcome(payload, reply, n_before, n_after, before, after)
        try:
            reply = await self.clients[who].call(event, payload)
        except socketio.exceptions.TimeoutError:
            reply = MISSING
        n_after, after = await self.snapshot()
        self.calls += 1
        self.log.append(f"{who} {event} " + (
            str(reply.get("error", "ok")) if isinstance(reply, dict) else repr(reply)))
        if who == "stateless" and event == "start" and isinstance(reply, dict) and reply.get("ok"):
            # Stay stateless: leave the conversation this start created.
            left = await self.clients[who].call(
                "leave", {"conversation": reply["conversation"], "reason": "done"})
            assert left == {"ok": True}, left
        return Outcome(payload, reply, n_before, n_after, before, after)

    async def _binary_call(self, who: str, event: Any, payload: Any) -> Any:
        like = self.clients[who]
        raw = Raw(self.server, like.namespace, like.cookie)
        await raw.connect()
        conns = len(self.server.ctx.conns)
        await raw.emit(event, payload)
        try:
            await eventually(lambda: not raw.connected, secs=CALL_TIMEOUT * 3)
            # ... and the server has forgotten it too
            await eventually(lambda: len(self.server.ctx.conns) == conns - 1,
                             secs=CALL_TIMEOUT * 3)
        except AssertionError:
            return MISSING
        finally:
            await raw.close()
        return CLOSED

    async def neighbour_state(self) -> Any:
        return self._conv_state(self.chat.conversations[self.n_conv])


class ServerThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-server",
                                       daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        async def cancel_rest() -> None:
            # engine.io's ping tasks outlive their sockets by up to ping_interval.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        self.run(cancel_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


async def _build_world(loop: asyncio.AbstractEventLoop, data_dir: Path) -> World:
    port = free_port()
    config = make_settings(data_dir, port=port, public_origin=f"http://localhost:{port}",
                           **GENEROUS)
    runner, server = await start_server(config)
    # The neighbours: a real conversation, started before any fuzzing.
    n_counsellor = await server.staff_client()
    n_youth = await server.youth()
    n_conv = (await n_youth.start())["conversation"]
    await n_counsellor.claim(n_conv)
    await n_youth.wait_for(lambda: n_youth.conversations[n_conv].epoch == 1, 5)

    counsellor = await server.add_staff(capacity=50)
    operator = await server.add_staff(role="operator")
    clients = {
        "stateless": Raw(server, "/youth"),
        "youth": Raw(server, "/youth"),
        "counsellor": Raw(server, "/staff", (await server.login(counsellor)).cookie),
        "operator": Raw(server, "/staff", (await server.login(operator)).cookie),
        "liaison": Raw(server, "/liaison"),
    }
    record = await server.ctx.store.get_by_username(counsellor.username)
    assert record is not None
    world = World(loop, server, runner, n_youth, n_counsellor, n_conv, clients, record.id)
    await world.ensure()
    world.neighbour_initial = await world.neighbour_state()
    return world


async def _teardown(world: World) -> None:
    for client in world.clients.values():
        await client.close()
    for ref in world.server.clients:
        await ref.close()
    await world.runner.cleanup()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    thread = ServerThread()
    built = thread.run(_build_world(thread.loop, tmp_path_factory.mktemp("fuzz") / "var"))
    try:
        yield built
    finally:
        try:
            thread.run(_teardown(built))
        finally:
            thread.stop()


# ------------------------------------------------------------------ checks

def check_reply(ns: str, who: str, event: Any, drawn: Drawn, out: Outcome) -> None:
    payload, exact = out.payload, drawn[1]
    reply = out.reply
    where = f"{ns} {event!r} from {who} with {payload!r}"
    if reply is CLOSED:  # bytes anywhere in the payload: a binary event, refused
        assert _has_bytes(payload), f"closed without a binary payload: {where}"
        assert out.neighbour_after == out.neighbour_before, f"neighbour changed: {where}"
        assert out.rest_after == out.rest_before, f"a refused call changed state: {where}"
        return
    assert reply is not MISSING, f"no ack: {where}"
    assert isinstance(reply, dict), f"reply {reply!r} is not a dict: {where}"
    assert reply.get("ok") in (True, False), f"reply {reply!r}: {where}"
    # Nothing a stranger sends may touch the neighbour, whatever the answer.
    assert out.neighbour_after == out.neighbour_before, f"neighbour changed: {where}"
    known = event in EVENTS[ns]
    if reply["ok"] is False:
        assert set(reply) <= {"ok", "error", "info"}, f"reply {reply!r}: {where}"
        code = reply.get("error")
        assert code in ALL_CODES, f"undocumented code {code!r}: {where}"
        assert code != "internal", f"internal error: {where}"
        assert isinstance(reply.get("info", {}), dict)
        if known:
            assert code != "unknown_event", f"{where}"
        else:
            assert code == "unknown_event", f"{where}"
        if exact is not None:
            assert code == exact, f"{code!r} instead of {exact!r}: {where}"
        if known and event != "status" and not isinstance(payload, dict):
            assert code == "bad_payload", f"{code!r} for a non-object: {where}"
        if known and event == "status":
            assert payload is not None and payload != {}, f"status refused: {where}"
        assert out.rest_after == out.rest_before, f"a failed call changed state: {where}"
        return
    # ok: true — only where this client may succeed, and in the documented shape.
    assert known and event in OK_ALLOWED[who], f"accepted: {reply!r}: {where}"
    assert exact is None, f"accepted a broken payload: {reply!r}: {where}"
    required, optional = OK_SHAPE[event]
    assert required <= set(reply) <= required | optional, f"shape {sorted(reply)}: {where}"
    if event == "status":
        assert payload is None or payload == {}, f"status accepted a payload: {where}"
    if event == "send":
        assert reply["seq"] == payload["seq"]
    if event == "duty":
        assert reply["on"] is payload["on"]
    if event == "pause":
        assert reply["state"] == ("paused" if payload["paused"] else "active")


# ------------------------------------------------------------------ the fuzzing

@pytest.mark.parametrize(("ns", "event"), [(ns, event) for ns, events in EVENTS.items()
                                           for event in events])
@FUZZ
@given(data=st.data())
def test_fuzz_events(world: World, ns: str, event: str, data: st.DataObject) -> None:
    who = data.draw(WHO[ns], label="who")
    drawn = data.draw(PAYLOADS[ns][event], label="payload")
    out = world.run(world.exercise(who, event, drawn[0]))
    check_reply(ns, who, event, drawn, out)


BINARY_PACKETS = st.one_of(
    # A binary-event or binary-ack header announcing any number of attachments
    st.tuples(st.sampled_from(["5", "6"]), st.integers(min_value=0, max_value=2**62),
              st.sampled_from(["/youth", "/liaison"]), JSONISH).map(
        lambda t: ("text", f"4{t[0]}{t[1]}-{t[2]},{json.dumps(['send', t[3]], default=repr)}")),
    # A bare binary WebSocket frame (engine.io would hand it on as a message)
    st.binary(min_size=0, max_size=2000).map(lambda b: ("bytes", b)),
)


@FUZZ
@given(packet=BINARY_PACKETS, followers=st.integers(min_value=0, max_value=5))
def test_fuzz_binary_packets_close_the_connection_and_keep_nothing(
        world: World, packet: tuple[str, Any], followers: int) -> None:
    async def probe() -> bool:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(
                f"{world.server.url}/socket.io/?EIO=4&transport=websocket",
                headers={"Origin": world.server.origin})
            assert (await ws.receive_str(timeout=5)).startswith("0{")
            await ws.send_str("40/youth,")
            assert (await ws.receive_str(timeout=5)).startswith("40/youth,")
            kind, data = packet
            with contextlib.suppress(ConnectionResetError):
                if kind == "text":
                    await ws.send_str(data)
                else:
                    await ws.send_bytes(data)
                for _ in range(followers):  # attachments the header announced
                    await ws.send_bytes(os.urandom(1000))
            with contextlib.suppress(TimeoutError):
                while not ws.closed and (await ws.receive(timeout=10)).type in (
                        aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    pass
            return ws.closed

    assert world.run(probe()), f"{packet!r} did not close the connection"
    sio = world.server.ctx.sio
    assert sio is not None and sio._binary_packet == {}
    assert world.run(world.neighbour_state()) == world.neighbour_initial


@pytest.mark.parametrize("ns", ["/youth", "/staff", "/liaison"])
@FUZZ
@given(data=st.data())
def test_fuzz_unknown_event_names(world: World, ns: str, data: st.DataObject) -> None:
    name = data.draw(UNKNOWN_NAMES.filter(lambda n: n not in EVENTS[ns]), label="event")
    who = data.draw(st.sampled_from(CLIENTS[ns]), label="who")
    payload = data.draw(JSONISH | payloads(YOUTH_EVENTS["send"]).map(lambda d: d[0]),
                        label="payload")
    out = world.run(world.exercise(who, name, payload))
    check_reply(ns, who, name, (payload, "unknown_event"), out)


# ------------------------------------------------------------------ deterministic batches

CANNED: list[Any] = [
    None, {}, [], "", 0, -1, 2**64, 1.5, True, "status", [{}], {"": None},
    {"conversation": "@n_conv"}, {"conversation": "@n_conv", "active": True},
    {"conversation": "@n_conv", "paused": True}, {"conversation": "@n_conv", "reason": "panic"},
    {"conversation": "@n_conv", "from": "@n_counsellor", "seq": 2**62},
    {"conversation": "@n_conv", "epoch": 1, "seq": 1,
     "boxes": [{"to": "@n_youth", "nonce": "A" * 32, "ct": "A" * 363}]},
    {"conversation": "@n_conv", "member": "@n_youth", "resume": "A" * 43},
    {"conversation": "@n_conv", "member": "@n_counsellor", "resume": "A" * 43},
    {"conversation": "@n_conv", "kx_pk": "A" * 43},
    {"conversation": "0" * 32, "kx_pk": "A" * 43}, {"kx_pk": "A" * 44}, {"kx_pk": "A" * 42},
    {"kx_pk": "A" * 43, "profile": {"language": "xx"}}, {"kx_pk": "A" * 43, "extra": 1},
    {"on": 1}, {"on": "true"}, {"on": None}, {f"k{i}": i for i in range(40)},
]
STRANGER_OK = {("/youth", "status"), ("/staff", "ops_watch")}


def test_invalid_calls_from_a_connection_without_a_conversation_change_nothing(
        world: World) -> None:
    async def batch() -> tuple[Any, Any, list[tuple[str, str, Any, Any]]]:
        await world.ensure()
        stranger = {"/youth": Raw(world.server, "/youth"),
                    "/staff": world.clients["operator"],
                    "/liaison": world.clients["liaison"]}
        await stranger["/youth"].connect()
        ctx, chat = world.server.ctx, world.chat
        rows = [r async for r in ctx.store.iter_audit()]
        before = (len(chat.conversations), len(chat.queue), len(rows), await world.snapshot())
        answers = []
        for ns, events in EVENTS.items():
            for event in [*events, "nope"]:
                for payload in CANNED:
                    resolved = world.resolve(payload, "stateless")
                    if (ns, event) in STRANGER_OK and resolved in (None, {}, {"on": False}):
                        continue
                    if event == "start" and resolved == {"kx_pk": "A" * 43}:
                        continue
                    try:
                        reply = await stranger[ns].call(event, resolved)
                    except socketio.exceptions.TimeoutError:
                        reply = MISSING
                    answers.append((ns, event, resolved, reply))
        rows = [r async for r in ctx.store.iter_audit()]
        after = (len(chat.conversations), len(chat.queue), len(rows), await world.snapshot())
        await stranger["/youth"].close()
        return before, after, answers

    before, after, answers = world.run(batch())
    world.calls += len(answers)
    assert len(answers) > 400
    for ns, event, payload, reply in answers:
        where = f"{ns} {event} {payload!r}"
        assert isinstance(reply, dict) and reply.get("ok") is False, f"{reply!r}: {where}"
        assert reply["error"] in ALL_CODES - {"internal"}, where
    assert before[:3] == after[:3]  # conversations, queue length, audit rows
    assert before[3] == after[3]  # and everything else, the neighbour included


# (client, event, payload, the one error it must get): well-formed calls that
# break a domain rule, from the members of the fuzzed conversation. Random
# fuzzing reaches these only now and then; here each is certain.
RULES: list[tuple[str, str, dict[str, Any], str]] = [
    *[(who, "send", {"conversation": "@conv", "epoch": epoch, "seq": seq, "boxes": boxes}, code)
      for who in ("youth", "counsellor")
      for epoch, seq, boxes, code in [
          ("@epoch_next", "@seq", "@boxes", "stale_epoch"),
          ("@epoch_prev", "@seq", "@boxes", "stale_epoch"),
          ("@epoch", "@seq_last", "@boxes", "replayed"),
          ("@epoch", "@seq_gap", "@boxes", "out_of_order"),
          ("@epoch", "@seq", [], "unknown_recipient"),
          ("@epoch", "@seq", "@boxes_self", "unknown_recipient"),
          ("@epoch", "@seq", "@boxes_twice", "unknown_recipient"),
          ("@epoch", "@seq", "@boxes_and_self", "unknown_recipient"),
          ("@epoch", "@seq", "@boxes_to_neighbour", "unknown_recipient"),
          ("@epoch", "@seq", "@boxes_to_nobody", "unknown_recipient"),
      ]],
    ("youth", "send", {"conversation": "@n_conv", "epoch": 1, "seq": 1,
                       "boxes": "@boxes_to_neighbour"}, "not_member"),
    ("counsellor", "send", {"conversation": "0" * 32, "epoch": 1, "seq": 1,
                            "boxes": "@boxes"}, "unknown_conversation"),
    ("youth", "delivered", {"conversation": "@conv", "from": "@self", "seq": 1}, "not_member"),
    ("youth", "delivered", {"conversation": "@conv", "from": "@n_counsellor", "seq": 1},
     "not_member"),
    ("counsellor", "delivered", {"conversation": "@n_conv", "from": "@n_youth", "seq": 9},
     "not_member"),
    ("youth", "typing", {"conversation": "@n_conv", "active": True}, "not_member"),
    ("youth", "pause", {"conversation": "@conv", "paused": False}, "wrong_state"),
    ("youth", "pause", {"conversation": "@n_conv", "paused": True}, "not_member"),
    ("youth", "leave", {"conversation": "@n_conv", "reason": "panic"}, "not_member"),
    ("youth", "start", {"kx_pk": SOME_PK}, "already_started"),
    ("youth", "resume", {"conversation": "@conv", "member": "@self", "resume": "A" * 43},
     "bad_resume"),
    ("youth", "resume", {"conversation": "@n_conv", "member": "@n_youth", "resume": "A" * 43},
     "bad_resume"),
    ("counsellor", "resume", {"conversation": "@conv", "member": "@youth",
                              "resume": "A" * 43}, "bad_resume"),
    ("counsellor", "claim", {"conversation": "@conv", "kx_pk": SOME_PK}, "already_claimed"),
    ("counsellor", "claim", {"conversation": "@n_conv", "kx_pk": SOME_PK}, "already_claimed"),
    ("counsellor", "take_next", {"kx_pk": SOME_PK}, "queue_empty"),
    ("counsellor", "end", {"conversation": "@n_conv"}, "not_member"),
    ("counsellor", "ops_watch", {"on": True}, "not_allowed"),
    ("operator", "end", {"conversation": "@conv"}, "not_member"),
    ("operator", "duty", {"on": True}, "not_allowed"),
    ("operator", "claim", {"conversation": "@conv", "kx_pk": SOME_PK}, "not_allowed"),
    ("stateless", "typing", {"conversation": "@conv", "active": True}, "not_member"),
    ("stateless", "leave", {"conversation": "@conv", "reason": "done"}, "not_member"),
]


@pytest.mark.parametrize(("who", "event", "payload", "code"), RULES,
                         ids=[f"{r[0]}-{r[1]}-{r[3]}-{i}" for i, r in enumerate(RULES)])
def test_domain_rule_violations_change_nothing(world: World, who: str, event: str,
                                               payload: dict[str, Any], code: str) -> None:
    ns = "/youth" if who in ("youth", "stateless") else "/staff"
    out = world.run(world.exercise(who, event, payload))
    check_reply(ns, who, event, (out.payload, code), out)
    # The same member can still send its next message: the refusal moved no seq.
    if event == "send":
        ok = world.run(world.exercise(who, "send", {
            "conversation": "@conv", "epoch": "@epoch", "seq": "@seq", "boxes": "@boxes"}))
        assert ok.reply == {"ok": True, "seq": ok.payload["seq"]}, ok.reply


def test_oversized_events_close_only_the_sending_connection(world: World) -> None:
    limit = world.server.settings.max_event_bytes
    big_ct = "A" * limit
    oversized = [
        ("status", {"pad": "x" * (limit + 1)}),
        ("start", {"kx_pk": "A" * (limit + 10)}),
        ("send", {"conversation": "0" * 32, "epoch": 0, "seq": 1,
                  "boxes": [{"to": "0" * 32, "nonce": "A" * 32, "ct": big_ct}]}),
        ("no_such_event", ["y" * (limit * 2)]),
    ]

    async def flood() -> list[tuple[str, bool, Any]]:
        await world.ensure()
        client = world.clients["stateless"]
        conns = len(world.server.ctx.conns)
        results = []
        for event, payload in oversized:
            assert client.connected
            await client.emit(event, payload)
            for _ in range(100):
                if not client.connected:
                    break
                await asyncio.sleep(0.05)
            closed = not client.connected
            await client.connect()  # the fuzzing client comes back
            results.append((event, closed, await client.call("status", {})))
        # Just under the bound: the largest well-formed send (three boxes of the
        # largest ciphertext) is answered, not dropped; one ciphertext a block too
        # big is refused by its field bound.
        max_ct = rand_b64(world.server.settings.max_box_bytes)
        largest = {"conversation": world.conv, "epoch": 2**32 - 1, "seq": 2**53,
                   "boxes": [{"to": "f" * 32, "nonce": rand_b64(24), "ct": max_ct}] * 3}
        results.append(("largest send", not client.connected,
                         await client.call("send", largest)))
        too_big_ct = rand_b64(world.server.settings.max_box_bytes + 256)
        results.append(("too big ct", not client.connected, await client.call("send", {
            "conversation": world.conv, "epoch": 1, "seq": 1,
            "boxes": [{"to": "f" * 32, "nonce": rand_b64(24), "ct": too_big_ct}]})))
        # Every closed connection was cleaned up (on_disconnect ran for it).
        for _ in range(100):
            if len(world.server.ctx.conns) == conns:
                break
            await asyncio.sleep(0.05)
        results.append(("connections", False, len(world.server.ctx.conns) - conns))
        return results

    n_before = world.run(world.neighbour_state())
    results = world.run(flood(), timeout=120)
    world.calls += len(results)
    for event, closed, status in results[:len(oversized)]:
        assert closed, f"an oversized {event!r} did not close the connection"
        assert status["ok"] is True, status
    assert results[-3][1] is False and results[-3][2] == {"ok": False, "error": "not_member"}
    assert results[-2][1] is False and results[-2][2] == {"ok": False, "error": "too_large"}
    assert results[-1][2] == 0, "closed connections left state behind"

    assert world.run(world.neighbour_state()) == n_before
    assert world.n_youth.connected and world.n_counsellor.connected


def test_malformed_frames_leave_the_connection_usable(world: World) -> None:
    # Frames that are not valid socket.io/JSON are dropped by the library (no
    # ack: they are not calls); the connection and the server must survive.
    frames = [
        '42/youth,1["typing",{]',
        '42/youth,2["typing",' + "[" * 3000 + "]" * 3000 + "]",
        '42/youth,3["typing",{"conversation":' + "1" * 5000 + "}]",
        "42/youth,4",
        "42/youth,5[]",
        '42/youth,6["status",NaN]',
        '42/youth,7["status",{},{},{}]',
        '42/nope,8["status",{}]',
        "43/youth,9[{}]",
        "4",
    ]

    async def probe() -> list[tuple[str, list[str], bool]]:
        results = []
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(
                f"{world.server.url}/socket.io/?EIO=4&transport=websocket",
                headers={"Origin": world.server.origin})
            assert (await ws.receive_str(timeout=5)).startswith("0{")
            await ws.send_str("40/youth,")
            assert (await ws.receive_str(timeout=5)).startswith("40/youth,")
            for i, frame in enumerate(frames):
                await ws.send_str(frame)
                await ws.send_str(f'42/youth,{1000 + i}["status",{{}}]')
                seen: list[str] = []
                alive = False
                with contextlib.suppress(TimeoutError):
                    while True:
                        msg = await ws.receive(timeout=3)
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        if msg.data.startswith(f"43/youth,{1000 + i}["):
                            alive = '"ok":true' in msg.data
                            break
                        seen.append(msg.data)
                results.append((frame[:40], seen, alive))
            # Not even engine.io: the server may close this connection, no more.
            await ws.send_str("\x00\xff")
            with contextlib.suppress(TimeoutError):
                while (await ws.receive(timeout=1)).type == aiohttp.WSMsgType.TEXT:
                    pass
            await ws.close()
        fresh = Raw(world.server, "/youth")
        await fresh.connect()
        status = await fresh.call("status", {})
        await fresh.close()
        results.append(("(then a fresh connection)", [], status["ok"] is True))
        return results

    for frame, seen, alive in world.run(probe()):
        assert alive, f"after {frame!r} the connection no longer answers"
        for message in seen:
            assert '"internal"' not in message, (frame, message)
    assert world.run(world.neighbour_state()) == world.neighbour_initial


def test_reserved_event_names_are_unknown_events(world: World) -> None:
    # Regression (found by this suite): python-socketio hands a client-sent
    # event named "connect" or "disconnect" to Namespace.trigger_event, which
    # used to pass it on to on_connect/on_disconnect. A connected client could
    # then run on_connect with an "environ" it chose ({"HTTP_ORIGIN": ...}: a
    # fresh ConnState, i.e. fresh rate-limit buckets and no address key), run
    # on_disconnect while still connected (its seat starts the grace timer,
    # later calls answer unknown_event), or crash the handler with a non-dict
    # (no ack). Expected: {"ok": false, "error": "unknown_event"}, nothing changed.
    async def probe() -> list[tuple[str, Any, Any, Any]]:
        results = []
        for name, payload in [("connect", {"HTTP_ORIGIN": world.server.origin}),
                              ("connect", 5), ("disconnect", {}), ("disconnect", None)]:
            client = Raw(world.server, "/youth")
            await client.connect()
            try:
                reply = await client.call(name, payload, wait_secs=2)
            except socketio.exceptions.TimeoutError:
                reply = MISSING
            status = await client.call("status", {})
            await client.close()
            results.append((name, payload, reply, status.get("ok")))
        return results

    for name, payload, reply, status_ok in world.run(probe()):
        assert reply == {"ok": False, "error": "unknown_event"}, (name, payload, reply)
        assert status_ok is True, f"after a client-sent {name!r} the connection is broken"


def test_non_string_event_names_are_unknown_events(world: World) -> None:
    # Regression (found by this suite) for lists and objects: the name was
    # looked up in a dict, so an unhashable name raised TypeError outside the
    # try: no ack at all ("Task exception was never retrieved").
    async def probe() -> list[tuple[Any, Any]]:
        client = Raw(world.server, "/youth")
        await client.connect()
        results = []
        for name in [None, 7, 1.5, True, ["status"], {"status": 1}]:
            try:
                reply = await client.call(name, {}, wait_secs=2)
            except socketio.exceptions.TimeoutError:
                reply = MISSING
            results.append((name, reply))
        await client.close()
        return results

    for name, reply in world.run(probe()):
        assert reply == {"ok": False, "error": "unknown_event"}, (name, reply)


# ------------------------------------------------------------------ the neighbours

def test_neighbour_conversation_is_untouched_and_still_works(world: World) -> None:
    if world.calls < 200:
        # Run alone (e.g. with -k): fuzz a little first, so this still means something.
        for ns, events in EVENTS.items():
            for event in [*events, "nope"]:
                for who in CLIENTS[ns]:
                    for payload in CANNED:
                        out = world.run(world.exercise(who, event, payload))
                        check_reply(ns, who, event, (out.payload, None), out)
    assert world.calls >= 200
    # The fuzzing got past validation into the domain rules, and was sometimes accepted.
    codes = {line.rsplit(" ", 1)[1] for line in world.log}
    domain = codes - {"ok", "bad_payload", "too_large", "unknown_event"}
    assert "ok" in codes and len(domain) >= 4, sorted(codes)

    # Then: the neighbours' conversation is exactly as it was before the fuzzing
    assert world.run(world.neighbour_state()) == world.neighbour_initial
    youth, counsellor, conv = world.n_youth, world.n_counsellor, world.n_conv
    assert youth.connected and counsellor.connected
    for side in (youth, counsellor):
        view = side.conversations[conv]
        assert view.state == "active" and view.epoch == 1
        assert view.typing == {}, "a stranger's typing reached the neighbours"
        assert side.inbox.empty() and side.undecryptable == 0 and side.bad_rosters == 0
        assert side.gaps == [] and side.replays == 0

    # And it still works in both directions
    async def talk() -> tuple[str, str]:
        await youth.send_text(conv, "still there?")
        got = await counsellor.next_message(5)
        await counsellor.send_text(conv, "yes, I am here")
        back = await youth.next_message(5)
        return got.text, back.text

    assert world.run(talk()) == ("still there?", "yes, I am here")
    state, epoch, count, _, _, members = world.run(world.neighbour_state())
    initial = world.neighbour_initial
    assert (state, epoch) == ("active", 1) and count == initial[2] + 2
    assert [m[4] for m in members] == [m[4] + 1 for m in initial[5]]  # each last_seq + 1
    assert [m[:4] for m in members] == [m[:4] for m in initial[5]]  # ids, roles, keys


# ------------------------------------------------------------------ rate-limit bypass

async def _strict_server(tmp_path: Path, **overrides: Any) -> tuple[Any, LiveServer]:
    port = free_port()
    config = make_settings(tmp_path / "var", port=port, public_origin=f"http://localhost:{port}",
                           **overrides)
    return await start_server(config)


async def _raw(server: LiveServer) -> Raw:
    client = Raw(server, "/youth")
    await client.connect()
    return client


async def _quiet(call: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await call()
    except socketio.exceptions.TimeoutError:
        return MISSING


async def test_client_sent_connect_does_not_reset_the_rate_limit(tmp_path: Path) -> None:
    # Regression, the impact of the reserved-name bug above: emitting "connect"
    # with {"HTTP_ORIGIN": <ours>} gave the connection fresh buckets.
    runner, server = await _strict_server(tmp_path, rate_other_per_min=1, rate_other_burst=3)
    client = await _raw(server)
    try:
        replies = [await client.call("status", {}) for _ in range(4)]
        assert [r["ok"] for r in replies] == [True, True, True, False]
        assert replies[-1]["error"] == "rate_limited"

        await _quiet(lambda: client.call("connect", {"HTTP_ORIGIN": server.origin}))

        after = await client.call("status", {})
        assert after.get("error") == "rate_limited", f"bucket reset: {after.get('ok')}"
    finally:
        await client.close()
        await runner.cleanup()


async def test_client_sent_connect_does_not_bypass_the_start_limit(tmp_path: Path) -> None:
    # Regression: a forged "connect" left ConnState.address_key None (there is
    # no aiohttp.request in a client's payload; with client_addr_header set, the
    # client even picked the address), so the per-address limit on starts, the
    # only bound on queue flooding, was skipped.
    runner, server = await _strict_server(tmp_path, rate_starts_per_hour=1)
    counsellor = await server.staff_client()  # someone on duty, so starts can queue
    first, second = await _raw(server), await _raw(server)
    try:
        assert (await first.call("start", {"kx_pk": rand_b64(32)}))["ok"] is True
        refused = await second.call("start", {"kx_pk": rand_b64(32)})
        assert refused["error"] == "rate_limited"

        await _quiet(lambda: second.call("connect", {"HTTP_ORIGIN": server.origin}))

        again = await second.call("start", {"kx_pk": rand_b64(32)})
        assert again.get("error") == "rate_limited", "start limit bypassed"
        assert len(server.ctx.chat.queue) == 1
    finally:
        await first.close()
        await second.close()
        await counsellor.close()
        await runner.cleanup()
