"""The JSON module handed to python-socketio and python-engineio (``json=``).

Same behaviour as engine.io's own ``engineio.json`` (integers longer than 100
digits are refused, so a crafted packet cannot make the loop parse a huge
number), but the decoder and the compact encoder are built once instead of
on every packet: engine.io's ``loads`` passes ``parse_int`` and socket.io's
``dumps`` passes ``separators``, and the standard library builds a new
``JSONDecoder``/``JSONEncoder`` for every call with arguments (~3 % of a
saturated server in docs/performance.md's profile).
"""

from __future__ import annotations

import json
from typing import Any

MAX_INT_DIGITS = 100
COMPACT = (",", ":")


def _safe_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise ValueError("Integer is too large")
    return int(text)


_decoder = json.JSONDecoder(parse_int=_safe_int)
_compact = json.JSONEncoder(separators=COMPACT)


def loads(s: str | bytes | bytearray, **kwargs: Any) -> Any:
    if kwargs:
        kwargs.setdefault("parse_int", _safe_int)
        return json.loads(s, **kwargs)
    if not isinstance(s, str):
        s = bytes(s).decode("utf-8")
    return _decoder.decode(s)


def dumps(obj: Any, **kwargs: Any) -> str:
    if not kwargs or kwargs == {"separators": COMPACT}:
        # Both engine.io's handshake and socket.io's packets end up here; the
        # compact form is what socket.io asks for and what every client parses.
        return _compact.encode(obj) if kwargs else json.dumps(obj)
    return json.dumps(obj, **kwargs)
