"""What crosses Redis comes back as it went, and nothing else comes back:
the commands' JSON and the snapshots' pickle rebuild only named classes."""

from __future__ import annotations

import os
import pickle
from collections import deque

import pytest

from chatserver.domain.events import Conn
from chatserver.domain.model import Buffered, EndReason, Role, StaffRef, State
from chatserver.domain.relay import BoxIn
from chatserver.live import codec


def test_a_command_comes_back_as_it_went() -> None:
    args = [Conn("/staff", "a.x1"), StaffRef(id=3, username="u", role="counsellor", alias="A",
                                             capacity=2, languages=("sv", "ar")),
            [BoxIn(to="m1", nonce="n", ct="c")], frozenset({"b", "a"}), None, 1.5, State.PAUSED,
            {("lane", "sv"): [1, 2]}, b"\x00\xff", deque([Buffered(1, 2, {"k": "v"})], maxlen=3)]
    back = codec.loads(codec.dumps(args))
    assert back == args
    # A StrEnum is a str too: it must come back as the enum, not its value.
    assert type(back[6]) is State and type(codec.loads(codec.dumps(Role.YOUTH))) is Role
    assert codec.loads(codec.dumps(EndReason.PAGE_CLOSED)) is EndReason.PAGE_CLOSED


def test_json_rebuilds_no_class_it_does_not_name() -> None:
    with pytest.raises(codec.CodecError):
        codec.loads('{"$c": "Popen", "f": {}}')
    with pytest.raises(codec.CodecError):
        codec.loads('{"$o": "ChatService", "f": {}}')
    with pytest.raises(codec.CodecError):
        codec.dumps(object())
    # Objects only _enc writes: an unknown marker, or a list where a key or
    # a member must be, is refused rather than passed on.
    for forged in ('{"$x": 1}', '{"$d": [[[1], 2]]}', '{"$s": [[1]]}', '{"$c": "Conn", "f": 1}',
                   '{"a": 1}', '[{"a": {}}]',
                   '{"$c": "Conn", "f": {"$d": [["namespace", "/x"], ["sid", "y"]]}}',
                   '{"$d": [[{"a": 1}, 2]]}', '{"$q": [1], "max": "x"}',
                   '{"$c": "Conn", "f": {"nope": 1}}'):
        with pytest.raises(codec.CodecError):
            codec.loads(forged)
    # A dict travels as pairs, so a client's keys never become markers.
    assert codec.loads(codec.dumps({"$c": "Popen", "f": {}})) == {"$c": "Popen", "f": {}}


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("true",))


def test_a_snapshot_rebuilds_no_class_it_does_not_name() -> None:
    state = {"conns": {Conn("/youth", "a.y"): {("c", "m")}}, "q": deque([1], maxlen=2)}
    assert codec.load_state(codec.dump_state(state)) == state
    with pytest.raises(codec.CodecError, match=r"posix\.system|os\.system"):
        codec.load_state(pickle.dumps(_Evil()))
