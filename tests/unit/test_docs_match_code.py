"""docs/protocol.md is normative: every error code and every event the server
handles must be documented there."""

from __future__ import annotations

from chatserver.errors import all_codes
from chatserver.settings import REPO_ROOT
from chatserver.transport.liaison import LiaisonNamespace
from chatserver.transport.staff import StaffNamespace
from chatserver.transport.youth import YouthNamespace

PROTOCOL = (REPO_ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")


def test_every_error_code_is_in_the_table() -> None:
    missing = sorted(c for c in all_codes() if f"| `{c}` |" not in PROTOCOL)
    assert missing == []


def test_every_event_is_documented() -> None:
    events = set(YouthNamespace.EVENTS) | set(StaffNamespace.EVENTS) | set(LiaisonNamespace.EVENTS)
    missing = sorted(e for e in events if f"`{e}`" not in PROTOCOL)
    assert missing == []
