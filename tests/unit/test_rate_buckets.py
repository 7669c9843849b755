"""Per-connection token buckets: made on first use, named consistently."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatserver.app import create_app
from chatserver.domain.clock import FakeClock
from chatserver.transport.context import ConnState
from chatserver.transport.http import CONTEXT
from chatserver.transport.liaison import LiaisonNamespace
from chatserver.transport.ratelimit import AddressLimiter
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


def test_address_limiter_slides_its_window() -> None:
    clock = FakeClock()
    limiter = AddressLimiter(clock, per_hour=3)
    key = limiter.key_for("203.0.113.7")
    assert [limiter.hit(key) for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.advance(600)
    assert limiter.hit(key) == pytest.approx(3000.0)  # the oldest leaves in 50 min
    clock.advance(3000)
    assert limiter.hit(key) == 0.0  # all three left the window together
    other = limiter.key_for("198.51.100.2")
    assert limiter.hit(other) == 0.0  # addresses do not share a budget
    clock.advance(3600)
    limiter.sweep()
    assert limiter.hit(key) == 0.0
