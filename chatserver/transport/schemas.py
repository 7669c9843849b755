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

from chatserver.crypto.e2e import usable_peer_key
from chatserver.crypto.tokens import b64d
from chatserver.domain.conversations import StartProfile
from chatserver.domain.model import HandoverBox
from chatserver.domain.relay import BoxIn
from chatserver.errors import BadPayload, TooLarge, UnknownLanguage
from chatserver.settings import Settings

_HEX_ID = re.compile(r"[0-9a-f]{32}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")
KX_PK_BYTES = 32
NONCE_BYTES = 24
SECRET_BYTES = 32
TAG_BYTES = 16
PAD_BLOCK = 256
MAX_SEQ = 2**63 - 1  # seq is a u64 in the associated data; stay in signed range
MAX_EPOCH = 2**32 - 1
MAX_PASSPHRASE_CHARS = 200  # six list words are at most 53 characters
INVITE_ROLES = ("police", "health", "social_services")
MAX_TAGS = 8
MAX_QUERY_CHARS = 64
# The keys of the relay events, built once: every message passes here.
SEND_KEYS = frozenset({"conversation", "epoch", "seq", "boxes"})
BOX_KEYS = frozenset({"to", "nonce", "ct"})
DELIVERED_KEYS = frozenset({"conversation", "from", "seq"})
TYPING_KEYS = frozenset({"conversation", "active"})


def obj(payload: Any, required: frozenset[str], optional: frozenset[str] = frozenset()
        ) -> Mapping[str, Any]:
    if not isinstance(payload, dict):
        raise BadPayload()
    if len(payload) > len(required) + len(optional):
        raise TooLarge() if len(payload) > 32 else BadPayload()
    keys = payload.keys()
    if optional:
        if not required <= keys or not keys <= required | optional:
            raise BadPayload()
    elif keys != required:  # the relay events' case: no set built per call
        raise BadPayload()
    return payload


def conv_id(value: Any) -> str:
    if not isinstance(value, str):
        raise BadPayload()
    if len(value) != 32 or not _HEX_ID.fullmatch(value):
        raise BadPayload()
    return value


def b64_bytes(value: Any, max_chars: int) -> bytes:
    """Decode canonical base64url (no padding), size first.

    One decoder for every key, nonce, secret and ciphertext (``tokens.b64d``):
    a value with non-zero unused trailing bits decodes to the same bytes as its
    canonical form here, but the pages' decoder (as strict as libsodium's)
    refuses it, so a lax check let a youth seat a counsellor in a conversation
    the counsellor's page could not open."""
    if not isinstance(value, str):
        raise BadPayload()
    if len(value) > max_chars:
        raise TooLarge()
    try:
        return b64d(value)
    except ValueError:
        raise BadPayload() from None


def b64_exact(value: Any, size: int) -> str:
    if len(b64_bytes(value, (size * 4 + 2) // 3)) != size:
        raise BadPayload()
    return str(value)


def kx_public_key(value: Any) -> str:
    """A public key the members' pages can make session keys with (canonical,
    32 bytes, not a low-order point)."""
    text = b64_exact(value, KX_PK_BYTES)
    if not usable_peer_key(b64d(text)):
        raise BadPayload()
    return text


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


def language_code(value: Any) -> str:
    """A BCP 47 language tag's shape (``sv``, ``ckb``, ``fa-AF``); whether the
    server knows it is the caller's check."""
    if not isinstance(value, str) or not _LANGUAGE.fullmatch(value):
        raise BadPayload()
    return value


# ------------------------------------------------------------------ events

def start(payload: Any, settings: Settings) -> tuple[str, StartProfile, str | None]:
    p = obj(payload, frozenset({"kx_pk"}), frozenset({"profile", "passphrase", "page_language"}))
    kx_pk = kx_public_key(p["kx_pk"])
    page_language = None
    if p.get("page_language") is not None:
        page_language = language_code(p["page_language"])
    raw = p.get("profile") or {}
    fields = {"language": "languages", "age_band": "age_bands", "gender": "genders",
              "municipality": "municipalities", "topic": "topics",
              "workplace_municipality": "municipalities", "profession": "professions"}
    prof = obj(raw, frozenset(), frozenset(fields) | {"urgent", "professional", "district"})
    lists = settings.service.get("profile", {})
    values: dict[str, Any] = {}
    for key, list_name in fields.items():
        if prof.get(key) is not None:
            values[key] = choice(prof[key], tuple(lists.get(list_name, ())))
    urgent = boolean(prof["urgent"]) if "urgent" in prof else False
    professional = boolean(prof["professional"]) if "professional" in prof else False
    if ("workplace_municipality" in values or "profession" in values) and not professional:
        raise BadPayload()
    if prof.get("district") is not None:
        # Only within the chosen municipality's own district list (Stockholm's
        # stadsdelar in the shipped config).
        districts = lists.get("districts", {}).get(values.get("municipality"), ())
        values["district"] = choice(prof["district"], tuple(districts))
    secret = None
    if p.get("passphrase") is not None:
        secret = text(p["passphrase"], MAX_PASSPHRASE_CHARS)
    if page_language is not None and \
            page_language not in tuple(lists.get("page_languages", ())):
        raise UnknownLanguage()  # checked last: a payload that is bad anyway says bad_payload
    return kx_pk, StartProfile(urgent=urgent, professional=professional,
                               page_language=page_language, **values), secret


def text(value: Any, max_chars: int) -> str:
    if not isinstance(value, str):
        raise BadPayload()
    if len(value) > max_chars:
        raise TooLarge()
    if not value.strip():
        raise BadPayload()
    return value


def resume(payload: Any) -> tuple[str, str, str]:
    p = obj(payload, frozenset({"conversation", "member", "resume"}))
    return conv_id(p["conversation"]), conv_id(p["member"]), b64_exact(p["resume"], SECRET_BYTES)


def send(payload: Any, settings: Settings) -> tuple[str, int, int, list[BoxIn]]:
    p = obj(payload, SEND_KEYS)
    boxes = p["boxes"]
    if not isinstance(boxes, list):
        raise BadPayload()
    if len(boxes) > settings.max_members - 1:
        raise TooLarge()
    max_ct_chars = (settings.max_box_bytes * 4 + 2) // 3
    out: list[BoxIn] = []
    for raw in boxes:
        b = obj(raw, BOX_KEYS)
        ct_len = len(b64_bytes(b["ct"], max_ct_chars))
        body = ct_len - TAG_BYTES
        if body < PAD_BLOCK or body % PAD_BLOCK:
            raise BadPayload()
        out.append(BoxIn(conv_id(b["to"]), b64_exact(b["nonce"], NONCE_BYTES), b["ct"]))
    return conv_id(p["conversation"]), uint(p["epoch"], MAX_EPOCH), uint(p["seq"], MAX_SEQ), out


def delivered(payload: Any) -> tuple[str, str, int]:
    p = obj(payload, DELIVERED_KEYS)
    return conv_id(p["conversation"]), conv_id(p["from"]), uint(p["seq"], MAX_SEQ)


def typing(payload: Any) -> tuple[str, bool]:
    p = obj(payload, TYPING_KEYS)
    return conv_id(p["conversation"]), boolean(p["active"])


def pause(payload: Any) -> tuple[str, bool]:
    p = obj(payload, frozenset({"conversation", "paused"}))
    return conv_id(p["conversation"]), boolean(p["paused"])


def leave(payload: Any) -> tuple[str, str]:
    p = obj(payload, frozenset({"conversation", "reason"}))
    return conv_id(p["conversation"]), choice(p["reason"], ("done", "panic", "closed"))


def conversation_only(payload: Any) -> str:
    return conv_id(obj(payload, frozenset({"conversation"}))["conversation"])


def claim(payload: Any) -> tuple[str, str, bool]:
    p = obj(payload, frozenset({"conversation", "kx_pk"}), frozenset({"offline_ok"}))
    offline_ok = boolean(p["offline_ok"]) if "offline_ok" in p else False
    return conv_id(p["conversation"]), kx_public_key(p["kx_pk"]), offline_ok


def reattach(payload: Any) -> tuple[str, str]:
    p = obj(payload, frozenset({"conversation", "kx_pk"}))
    return conv_id(p["conversation"]), kx_public_key(p["kx_pk"])


def take_next(payload: Any) -> str:
    return kx_public_key(obj(payload, frozenset({"kx_pk"}))["kx_pk"])


def on_flag(payload: Any) -> bool:
    return boolean(obj(payload, frozenset({"on"}))["on"])


def empty(payload: Any) -> None:
    if payload is not None and payload != {}:
        raise BadPayload()


def choose(payload: Any) -> tuple[str, bool]:
    p = obj(payload, frozenset({"conversation", "wait"}))
    return conv_id(p["conversation"]), boolean(p["wait"])


def request_answer(payload: Any, key: str) -> tuple[str, str, bool]:
    p = obj(payload, frozenset({"conversation", "request", key}))
    return conv_id(p["conversation"]), conv_id(p["request"]), boolean(p[key])


def member_ref(payload: Any) -> tuple[str, str]:
    p = obj(payload, frozenset({"conversation", "member"}))
    return conv_id(p["conversation"]), conv_id(p["member"])


def transfer(payload: Any, settings: Settings) -> tuple[str, int, HandoverBox | None]:
    p = obj(payload, frozenset({"conversation", "to"}), frozenset({"handover"}))
    box = handover_box(p["handover"], settings) if p.get("handover") is not None else None
    return conv_id(p["conversation"]), uint(p["to"], 2**31 - 1), box


def handover_box(value: Any, settings: Settings) -> HandoverBox:
    """A sealed handover (docs/protocol.md, "Handover"): at most what one full
    send carries, ``max_members - 1`` boxes' worth, so the event bound holds."""
    b = obj(value, frozenset({"from_pk", "to_pk", "nonce", "ct"}))
    max_ct = (settings.max_members - 1) * settings.max_padded_plaintext_bytes + TAG_BYTES
    ct_len = len(b64_bytes(b["ct"], (max_ct * 4 + 2) // 3))
    body = ct_len - TAG_BYTES
    if body < PAD_BLOCK or body % PAD_BLOCK:
        raise BadPayload()
    if ct_len > max_ct:
        raise TooLarge()
    return HandoverBox(from_pk=kx_public_key(b["from_pk"]), to_pk=kx_public_key(b["to_pk"]),
                       nonce=b64_exact(b["nonce"], NONCE_BYTES), ct=b["ct"])


def transfer_answer(payload: Any) -> tuple[str, bool, str | None]:
    p = obj(payload, frozenset({"conversation", "accept"}), frozenset({"kx_pk"}))
    accept = boolean(p["accept"])
    kx_pk = kx_public_key(p["kx_pk"]) if "kx_pk" in p else None
    if accept and kx_pk is None:
        raise BadPayload()
    return conv_id(p["conversation"]), accept, kx_pk


def invite_create(payload: Any) -> tuple[str, str, str]:
    p = obj(payload, frozenset({"conversation", "invite", "role"}))
    return conv_id(p["conversation"]), b64_exact(p["invite"], 32), choice(p["role"], INVITE_ROLES)


def join(payload: Any) -> tuple[str, str, str]:
    p = obj(payload, frozenset({"invite", "kx_pk", "mac"}))
    return (b64_exact(p["invite"], 32), kx_public_key(p["kx_pk"]),
            b64_exact(p["mac"], 32))


def tags(payload: Any, allowed: tuple[str, ...]) -> tuple[str, frozenset[str]]:
    p = obj(payload, frozenset({"conversation", "reasons"}))
    reasons = p["reasons"]
    if not isinstance(reasons, list):
        raise BadPayload()
    if len(reasons) > MAX_TAGS:
        raise TooLarge()
    return conv_id(p["conversation"]), frozenset(choice(r, allowed) for r in reasons)


def partners(payload: Any) -> tuple[str, str | None]:
    p = obj(payload, frozenset({"query"}), frozenset({"kind"}))
    query = p["query"]
    if not isinstance(query, str):
        raise BadPayload()
    if len(query) > MAX_QUERY_CHARS:
        raise TooLarge()
    kind = p.get("kind")
    if kind is not None and (not isinstance(kind, str) or len(kind) > 32):
        raise BadPayload()
    return query, kind


def refer(payload: Any) -> tuple[str, str]:
    p = obj(payload, frozenset({"conversation", "partner"}))
    code = p["partner"]
    if not isinstance(code, str) or not 2 <= len(code) <= 48:
        raise BadPayload()
    return conv_id(p["conversation"]), code
