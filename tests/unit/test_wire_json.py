"""The JSON module socket.io and engine.io use (chatserver/transport/wire_json.py):
same results as the standard library, engine.io's guard against huge integers
kept, and the app really hands it to both libraries."""

from __future__ import annotations

import json
from pathlib import Path

import engineio.packet
import pytest
import socketio.packet

from chatserver.app import create_app
from chatserver.transport import wire_json
from tests.conftest import make_settings

SAMPLES = [
    {"ok": True, "seq": 3, "boxes": [{"to": "m1", "nonce": "AAAA", "ct": "BBBB"}]},
    ["box", {"conversation": "c", "text": "åäö \u0627\u0644 \"quoted\" \\ / \n"}],
    {"n": -12, "f": 1.5, "none": None, "nested": [[], {}]},
]


@pytest.mark.parametrize("value", SAMPLES)
def test_round_trip_matches_the_standard_library(value: object) -> None:
    compact = wire_json.dumps(value, separators=(",", ":"))
    assert compact == json.dumps(value, separators=(",", ":"))
    assert wire_json.dumps(value) == json.dumps(value)
    assert wire_json.loads(compact) == value
    assert wire_json.loads(compact.encode()) == value
    assert wire_json.dumps(value, sort_keys=True) == json.dumps(value, sort_keys=True)


def test_huge_integers_are_refused_like_engineio_does() -> None:
    assert wire_json.loads("1" * 100) == int("1" * 100)
    with pytest.raises(ValueError, match="too large"):
        wire_json.loads("[" + "9" * 101 + "]")
    with pytest.raises(ValueError, match="too large"):
        wire_json.loads("9" * 101, strict=True)  # the keyword path keeps the guard


def test_malformed_input_raises_like_the_standard_library() -> None:
    with pytest.raises(json.JSONDecodeError):
        wire_json.loads('{"a":')


def test_the_app_hands_it_to_socketio_and_engineio(tmp_path: Path) -> None:
    create_app(make_settings(tmp_path / "var"))
    assert socketio.packet.Packet.json is wire_json
    assert engineio.packet.Packet.json is wire_json
