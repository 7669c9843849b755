"""What travels through Redis: commands (JSON) and snapshots of the live
state (pickle, read back by an unpickler that rebuilds only the classes
named here).

Neither can run code when read back: JSON rebuilds only the classes named
here, field by field, and the snapshot's unpickler refuses every class not in
the same list (and a snapshot must carry the nodes' MAC before it is read at
all: chatserver/live/replicated.py). Commands are JSON because they are small
and many; a snapshot is the whole state at once, and pickle writes a national
peak's (10 000 youths) in a seventh of the time (docs/performance.md).
Dicts keep their order (every node must iterate them alike); JSON writes sets
sorted, since their order differs between processes anyway.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
from collections import deque
from enum import Enum
from typing import Any

from sortedcontainers import SortedList

from chatserver.domain.conversations import StartProfile
from chatserver.domain.events import Conn
from chatserver.domain.model import (
    Buffered,
    Conversation,
    Counsellor,
    EndReason,
    HandoverBox,
    Invite,
    JoinRequest,
    Member,
    Profile,
    Role,
    StaffRef,
    State,
    Transfer,
)
from chatserver.domain.relay import BoxIn
from chatserver.domain.sessions import Session
from chatserver.domain.staff_views import StaffViews
from chatserver.queue.model import QueueKey, WaitingQueue
from chatserver.queue.view import View

DATACLASSES: dict[str, type] = {cls.__name__: cls for cls in (
    Buffered, Conversation, Counsellor, HandoverBox, Invite, JoinRequest, Member, Profile,
    StaffRef, Transfer, StartProfile, Conn, BoxIn, Session, QueueKey, View)}
ENUMS: dict[str, type[Enum]] = {cls.__name__: cls for cls in (EndReason, Role, State)}
# Plain classes whose attributes are state (not their collaborators).
OBJECTS: dict[str, type] = {cls.__name__: cls for cls in (WaitingQueue, StaffViews)}


class CodecError(ValueError):
    """Something in a command or snapshot is not what this code writes."""


def dumps(value: Any) -> str:
    return json.dumps(_enc(value), separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    # Each JSON object is rebuilt as the parser meets it (innermost first),
    # in the same pass: every node decodes every command, and a second walk
    # over the parsed value in Python was a good part of the apply cost.
    fields: list[_Fields] = []
    try:
        value = json.loads(text, object_hook=lambda v: _dec_object(v, fields))
    except TypeError as exc:  # a class's wrong fields, an unhashable key
        raise CodecError(f"not what this code writes: {exc}") from None
    # _enc writes a plain object only as a class's fields: one anywhere
    # else (or a class's fields that are not one) is not what it wrote.
    if any(not f.used for f in fields):
        raise CodecError("unexpected JSON object")
    return value


class _Fields(dict[str, Any]):
    """A plain JSON object, to be a class's fields (and nothing else)."""

    used = False


def _enc(v: Any) -> Any:
    if isinstance(v, Enum):  # first: a StrEnum is a str too
        return {"$e": type(v).__name__, "v": v.value}
    if v is None or isinstance(v, bool | int | float | str):
        return v
    if isinstance(v, list):
        return [_enc(x) for x in v]
    if isinstance(v, tuple):
        return {"$t": [_enc(x) for x in v]}
    if isinstance(v, bytes):
        return {"$b": v.hex()}
    if isinstance(v, dict):
        return {"$d": [[_enc(k), _enc(x)] for k, x in v.items()]}
    if isinstance(v, set | frozenset):
        items = sorted((_enc(x) for x in v), key=lambda e: json.dumps(e, sort_keys=True))
        return {"$f" if isinstance(v, frozenset) else "$s": items}
    if isinstance(v, deque):
        return {"$q": [_enc(x) for x in v], "max": v.maxlen}
    if isinstance(v, SortedList):
        return {"$l": [_enc(x) for x in v]}
    name = type(v).__name__
    if dataclasses.is_dataclass(v) and DATACLASSES.get(name) is type(v):
        return {"$c": name, "f": {f.name: _enc(getattr(v, f.name))
                                  for f in dataclasses.fields(v)}}
    if OBJECTS.get(name) is type(v):
        return {"$o": name, "f": {k: _enc(x) for k, x in vars(v).items()}}
    raise CodecError(f"cannot encode a {name}")


def _dec_object(v: dict[str, Any], fields: list[_Fields]) -> Any:
    """One JSON object, its members already decoded. Only _enc writes
    objects with a "$" key (a dict from elsewhere travels as "$d" pairs)."""
    if "$t" in v:
        return tuple(v["$t"])
    if "$d" in v:
        return {_hashable(k): x for k, x in v["$d"]}
    if "$s" in v:
        return {_hashable(x) for x in v["$s"]}
    if "$f" in v:
        return frozenset(_hashable(x) for x in v["$f"])
    if "$q" in v:
        return deque(v["$q"], maxlen=v["max"])
    if "$l" in v:
        return SortedList(v["$l"])
    if "$b" in v:
        return bytes.fromhex(v["$b"])
    if "$e" in v:
        enum = ENUMS.get(v["$e"])
        if enum is None:
            raise CodecError("unknown enum")
        return enum(v["v"])
    if "$c" in v:
        cls = DATACLASSES.get(v["$c"])
        if cls is None:
            raise CodecError("unknown class")
        return cls(**_used(v.get("f")))
    if "$o" in v:
        cls = OBJECTS.get(v["$o"])
        if cls is None:
            raise CodecError("unknown class")
        obj: Any = object.__new__(cls)
        for k, x in _used(v.get("f")).items():
            setattr(obj, k, x)
        return obj
    if any(k.startswith("$") for k in v):
        raise CodecError("unexpected JSON object")
    plain = _Fields(v)
    fields.append(plain)
    return plain


def _used(f: Any) -> dict[str, Any]:
    if not isinstance(f, _Fields) or f.used:
        raise CodecError("unexpected JSON object")
    f.used = True
    return f


def _hashable(v: Any) -> Any:
    # A list (JSON's array) cannot be a key or a member; what _enc writes
    # there is a scalar, a tuple or a dataclass, never a list.
    if isinstance(v, list | dict):
        raise CodecError("unexpected JSON value")
    return v


# (module, name) of every class a snapshot may hold.
SNAPSHOT_CLASSES = frozenset({
    *((cls.__module__, cls.__qualname__) for cls in (
        *DATACLASSES.values(), *ENUMS.values(), *OBJECTS.values())),
    ("sortedcontainers.sortedlist", "SortedList"), ("collections", "deque")})


class _StateUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in SNAPSHOT_CLASSES:
            raise CodecError(f"a snapshot may not hold {module}.{name}")
        return super().find_class(module, name)


def dump_state(state: Any) -> bytes:
    return pickle.dumps(state, protocol=5)


def load_state(data: bytes) -> Any:
    try:
        return _StateUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError) as exc:
        raise CodecError("unreadable snapshot") from exc
