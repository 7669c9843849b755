"""Admission's counts: per address group, pending vs joined, and the total."""

from __future__ import annotations

from dataclasses import replace

from chatserver.settings import Settings
from chatserver.transport.admission import (
    TOO_MANY_FROM_ADDRESS,
    TOO_MANY_PENDING,
    Admission,
)


def gate(settings: Settings, **limits: float) -> Admission:
    base = {"max_connections_per_address": 3, "max_pending_handshakes_per_address": 2,
            "max_pending_handshakes": 5, "max_anonymous_connections": 4,
            "handshake_join_secs": 10.0}
    return Admission(replace(settings, **{**base, **limits}))


def test_pending_handshakes_are_bounded_per_group_and_freed_by_joining(
        settings: Settings) -> None:
    a = gate(settings)
    assert a.admit("s1", a.key_for("g"), 0) is None and a.admit("s2", a.key_for("g"), 0) is None
    assert a.admit("s3", a.key_for("g"), 0) == TOO_MANY_PENDING
    assert a.admit("t1", a.key_for("other"), 0) is None  # another group is not affected
    a.joined("s1")
    assert a.admit("s3", a.key_for("g"), 0) is None  # one pending place freed
    assert a.admit("s4", a.key_for("g"), 0) == TOO_MANY_FROM_ADDRESS  # 3 open in the group
    assert a.refused == {TOO_MANY_FROM_ADDRESS: 1, TOO_MANY_PENDING: 1}


def test_node_wide_pending_bound(settings: Settings) -> None:
    a = gate(settings, max_pending_handshakes=3)
    for i in range(3):
        assert a.admit(f"s{i}", a.key_for(f"g{i}"), 0) is None
    assert a.admit("late", a.key_for("fresh"), 0) == TOO_MANY_PENDING


def test_full_counts_joined_sessions_only_and_gone_frees_everything(
        settings: Settings) -> None:
    a = gate(settings, max_connections_per_address=100, max_pending_handshakes_per_address=100,
             max_pending_handshakes=100, max_anonymous_connections=2)
    for i in range(3):
        a.admit(f"s{i}", a.key_for("g"), 0)
    a.joined("s0")
    assert not a.full()
    a.joined("s1")
    assert a.full()
    for i in range(3):
        a.gone(f"s{i}")
    a.gone("s0")  # twice is harmless
    assert not a.full() and len(a) == 0 and a.pending_total == 0
    assert a._open == {} and a._pending == {}  # no empty entries left behind


def test_overdue_lists_only_unjoined_sessions_past_the_deadline(settings: Settings) -> None:
    a = gate(settings, max_connections_per_address=100, max_pending_handshakes_per_address=100,
             max_pending_handshakes=100, handshake_join_secs=10.0)
    a.admit("old-joined", a.key_for("g"), 0)
    a.joined("old-joined")
    a.admit("old", a.key_for("g"), 1)
    a.admit("young", a.key_for("g"), 8)
    assert a.overdue(11.5) == ["old"]
    assert a.overdue(30) == ["old", "young"]


def test_groups_are_kept_only_as_keyed_hashes(settings: Settings) -> None:
    # Like every per-address count: no network or address in memory.
    a = gate(settings)
    group = "2001:db8:1:2::/64"
    assert a.admit("s1", a.key_for(group), 0) is None
    assert a.key_for(group) != group.encode() and len(a.key_for(group)) == 32
    kept = [*a._open, *a._pending, *(s.group for s in a._sessions.values())]
    assert kept and all(isinstance(k, bytes) and group.encode() not in k for k in kept)
    assert Admission(settings).key_for(group) != a.key_for(group)  # a key per process
