"""Payload validation: size first, then shape. Every event's payload must be a
JSON object with exactly the documented keys (docs/protocol.md). Validators
return plain typed values; they raise ``BadPayload`` or ``TooLarge``.

The whole frame is bounded earlier by engine.io's ``max_http_buffer_size``
(= ``Settings.max_event_bytes``); here each field gets its own bound.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from chatserver.domain.conversations import StartProfile
from chatserver.domain.relay import BoxIn
from chatserver.errors import BadPayload, TooLarge
from chatserver.settings import Settings

_HEX_ID = re.compile(r"[0-9a-f]{32}")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
KX_PK_BYTES = 32
NONCE_BYTES = 24
SECRET_BYTES = 32
TAG_BYTES = 16
PAD_BLOCK = 256
MAX_SEQ = 2**63 - 1  # seq is a u64 in the associated data; stay in signed range
MAX_EPOCH = 2**32 - 1


def obj(payload: Any, required: frozenset[str], optional: frozenset[str] = frozenset()
        ) -> Mapping[str, Any]:
    if not isinstance(payload, dict):
        raise BadPayload()
    if len(payload) > len(required) + len(optional):
        raise TooLarge() if len(payload) > 32 else BadPayload()
    keys = payload.keys()
    if not required <= keys or not keys <= required | optional:
        raise BadPayload()
    return payload


def conv_id(value: Any) -> str:
    if not isinstance(value, str):
        raise BadPayload()
    if len(value) != 32 or not _HEX_ID.fullmatch(value):
        raise BadPayload()
    return value


def b64_len(value: Any, max_chars: int) -> int:
    """Validate base64url (no padding) and return the decoded byte length
    without decoding: the server never needs the bytes themselves."""
    if not isinstance(value, str):
        raise BadPayload()
    if len(value) > max_chars:
        raise TooLarge()
    if len(value) % 4 == 1 or not _B64URL.fullmatch(value):
        raise BadPayload()
    return len(value) * 3 // 4


def b64_exact(value: Any, size: int) -> str:
    if b64_len(value, (size * 4 + 2) // 3) != size:
        raise BadPayload()
    return str(value)


def uint(value: Any, maximum: int) -> int:
    # bool is an int in Python; a JSON true is not a number here.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise BadPayload()
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadPayload()
    return value


def choice(value: Any, allowed: tuple[str, ...] | frozenset[str]) -> str:
    if not isinstance(value, str) or len(value) > 64 or value not in allowed:
        raise BadPayload()
    return value


# ------------------------------------------------------------------ events

def start(payload: Any, settings: Settings) -> tuple[str, StartProfile]:
    p = obj(payload, frozenset({"kx_pk"}), frozenset({"profile"}))
    kx_pk = b64_exact(p["kx_pk"], KX_PK_BYTES)
    raw = p.get("profile") or {}
    fields = {"language": "languages", "age_band": "age_bands", "gender": "genders",
              "municipality": "municipalities", "topic": "topics"}
    prof = obj(raw, frozenset(), frozenset(fields) | {"urgent"})
    lists = settings.service.get("profile", {})
    values: dict[str, Any] = {}
    for key, list_name in fields.items():
        if prof.get(key) is not None:
            values[key] = choice(prof[key], tuple(lists.get(list_name, ())))
    urgent = boolean(prof["urgent"]) if "urgent" in prof else False
    return kx_pk, StartProfile(urgent=urgent, **values)


def resume(payload: Any) -> tuple[str, str, str]:
    p = obj(payload, frozenset({"conversation", "member", "resume"}))
    return conv_id(p["conversation"]), conv_id(p["member"]), b64_exact(p["resume"], SECRET_BYTES)


def send(payload: Any, settings: Settings) -> tuple[str, int, int, list[BoxIn]]:
    p = obj(payload, frozenset({"conversation", "epoch", "seq", "boxes"}))
    boxes = p["boxes"]
    if not isinstance(boxes, list):
        raise BadPayload()
    if len(boxes) > settings.max_members - 1:
        raise TooLarge()
    max_ct_chars = (settings.max_box_bytes * 4 + 2) // 3
    out: list[BoxIn] = []
    for raw in boxes:
        b = obj(raw, frozenset({"to", "nonce", "ct"}))
        ct_len = b64_len(b["ct"], max_ct_chars)
        body = ct_len - TAG_BYTES
        if body < PAD_BLOCK or body % PAD_BLOCK:
            raise BadPayload()
        out.append(BoxIn(conv_id(b["to"]), b64_exact(b["nonce"], NONCE_BYTES), b["ct"]))
    return conv_id(p["conversation"]), uint(p["epoch"], MAX_EPOCH), uint(p["seq"], MAX_SEQ), out


def delivered(payload: Any) -> tuple[str, str, int]:
    p = obj(payload, frozenset({"conversation", "from", "seq"}))
    return conv_id(p["conversation"]), conv_id(p["from"]), uint(p["seq"], MAX_SEQ)


def typing(payload: Any) -> tuple[str, bool]:
    p = obj(payload, frozenset({"conversation", "active"}))
    return conv_id(p["conversation"]), boolean(p["active"])


def pause(payload: Any) -> tuple[str, bool]:
    p = obj(payload, frozenset({"conversation", "paused"}))
    return conv_id(p["conversation"]), boolean(p["paused"])


def leave(payload: Any) -> tuple[str, str]:
    p = obj(payload, frozenset({"conversation", "reason"}))
    return conv_id(p["conversation"]), choice(p["reason"], ("done", "panic"))


def conversation_only(payload: Any) -> str:
    return conv_id(obj(payload, frozenset({"conversation"}))["conversation"])


def claim(payload: Any) -> tuple[str, str]:
    p = obj(payload, frozenset({"conversation", "kx_pk"}))
    return conv_id(p["conversation"]), b64_exact(p["kx_pk"], KX_PK_BYTES)


def take_next(payload: Any) -> str:
    return b64_exact(obj(payload, frozenset({"kx_pk"}))["kx_pk"], KX_PK_BYTES)


def on_flag(payload: Any) -> bool:
    return boolean(obj(payload, frozenset({"on"}))["on"])


def empty(payload: Any) -> None:
    if payload is not None and payload != {}:
        raise BadPayload()
