"""Per-connection token buckets: made on first use, named consistently."""

from __future__ import annotations

from pathlib import Path

from chatserver.app import create_app
from chatserver.transport.context import ConnState
from chatserver.transport.http import CONTEXT
from chatserver.transport.liaison import LiaisonNamespace
from chatserver.transport.staff import StaffNamespace
from chatserver.transport.youth import YouthNamespace
from tests.conftest import make_settings


def test_every_event_names_a_real_bucket() -> None:
    for ns in (YouthNamespace, StaffNamespace, LiaisonNamespace):
        assert {bucket for bucket, _ in ns.EVENTS.values()} <= {"send", "other"}, ns


def test_buckets_are_born_on_first_use_and_then_limit(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var")
    ctx = create_app(settings)[CONTEXT]
    state = ConnState()
    assert state.send_bucket is None and state.other_bucket is None  # an idle youth
    waits = [ctx.take_token(state, "send", 0.0) for _ in range(settings.rate_send_burst + 1)]
    assert waits[:-1] == [0.0] * settings.rate_send_burst and waits[-1] > 0
    assert state.other_bucket is None  # the other kind is still untouched
    assert ctx.take_token(state, "other", 0.0) == 0.0 and state.other_bucket is not None
