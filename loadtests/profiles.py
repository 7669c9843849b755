"""The scenarios of each profile, as steps: one server start + one swarm run.

full  — the four scenarios (national evening peak, relay saturation,
        reconnect storm, capacity ramp) at full size, baselines side by side, the
        GC/handler levers, ≥ 60 s latency windows (~1 h).
quick — the same shapes, small and short (~2–3 min); latency windows are too
        short to catch GC and ping waves: a smoke of the harness, not figures.
smoke — CI: a few hundred clients for a few seconds against chatserver;
        integrity and errors only, no timing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from loadtests.servers import NO_RATE_LIMITS, NO_START_LIMIT

CAPACITY = 3  # counsellor capacity in every topology: the shipped default


@dataclass
class Step:
    label: str
    group: str  # relay | levers | peak | storm | ramp | claims
    stack: str  # bare | sio | chat
    scenario: str  # the swarm scenario
    plan: dict[str, Any]
    accounts: int = 0  # counsellor accounts the swarm logs in
    capacity: int = CAPACITY
    server: dict[str, Any] = field(default_factory=dict)  # chat settings overrides
    e2e_pairs: int = 0  # PyNaCl sample conversations run alongside (chat only)
    e2e_messages: int = 10  # messages each way per sample conversation
    variant: str = ""  # lever description for the report
    # Multi-node steps (loadtests/multinode.py): how many chatserver nodes
    # (0 = the one server of loadtests/servers.py), and whether the live state
    # is in a private Redis.
    nodes: int = 0
    redis: bool = False


def counsellors_for(connections: int, capacity: int = CAPACITY) -> int:
    return max(1, math.ceil(connections / (capacity + 1)))


def relay_step(stack: str, connections: int, *, latency_window: float | None,
               saturate_window: float | None, group: str = "relay",
               server: dict[str, Any] | None = None,
               variant: str = "", deflate: bool = False, e2e_pairs: int = 0,
               warmup: float = 5.0, latency_rate: float = 0.5) -> Step:
    plan: dict[str, Any] = {
        "connections": connections, "capacity": CAPACITY, "deflate": deflate,
        "latency": None if latency_window is None else {
            # The reference load, "1 msg/s per pair" of connections: 0.5
            # msg/s per connection, whatever the topology (a counsellor
            # connection carries 3 conversations).
            "msgs_per_sec_per_connection": latency_rate, "warmup_secs": warmup,
            "window_secs": latency_window},
        "saturate": None if saturate_window is None else {
            "warmup_secs": 3.0, "window_secs": saturate_window},
        "max_secs": 120 + (latency_window or 0) + (saturate_window or 0) + connections / 50,
    }
    label = f"{group}-{stack}-{connections}" + (f"-{variant}" if variant else "")
    return Step(label, group, stack, "relay", plan,
                accounts=counsellors_for(connections) if stack == "chat" else 0,
                server={**NO_RATE_LIMITS, **(server or {})}, variant=variant,
                e2e_pairs=e2e_pairs if stack == "chat" else 0)


def peak_step(youths: int, counsellors: int, window: float, settle: float, ramp_per_sec: float,
              e2e_pairs: int, label: str = "peak", server: dict[str, Any] | None = None,
              variant: str = "") -> Step:
    plan = {
        "youths": youths, "counsellors": counsellors, "capacity": CAPACITY,
        "deflate": False, "delivered_every": 1,
        "interval_min_secs": 10, "interval_max_secs": 20, "typing_probability": 0.3,
        # Compressed lifetimes so claims and ends happen all through the window
        # (a real chat lasts ~30 min; here a few minutes): claims/s are higher
        # than on a real evening, which is the conservative direction.
        "mean_chat_secs": 120, "youth_leaves_fraction": 0.2,
        "mean_patience_secs": 1800, "mean_claim_think_secs": 3,
        "claim_from_snapshot_fraction": 0.7,
        "ramp_per_sec": ramp_per_sec, "settle_secs": settle, "window_secs": window,
        "max_arrivals_per_sec": 20,
        "profiles": [
            {"language": "sv", "age_band": "16-17", "topic": "control"},
            {"language": "ar", "age_band": "13-15", "gender": "girl", "topic": "forced_marriage"},
            {},
            {"language": "en", "municipality": "Botkyrka", "urgent": True},
        ],
        "max_secs": 180 + window + settle + youths / ramp_per_sec,
    }
    return Step(label, "peak", "chat", "peak", plan, accounts=counsellors,
                server={**NO_START_LIMIT, **(server or {})}, e2e_pairs=e2e_pairs,
                variant=variant)


def storm_step(connections: int, warmup: float, label: str = "storm",
               drop_within: float = 5.0, reconnect_within: float = 5.0, after: float = 5.0,
               interval: tuple[float, float] = (2.0, 6.0)) -> Step:
    # The storm's requirement, "every client drops and reconnects within
    # 10 s": a drop within the first 5 s, back within 5 s more.
    plan = {
        "connections": connections, "capacity": CAPACITY, "deflate": False, "delivered_every": 1,
        "interval_min_secs": interval[0], "interval_max_secs": interval[1],
        "warmup_secs": warmup, "drop_within_secs": drop_within,
        "reconnect_within_secs": reconnect_within, "max_wait_secs": 60, "after_secs": after,
        "max_secs": 240 + connections / 50,
    }
    # A counsellor's reconnect sends one resume per conversation plus catch-up
    # acks at once: lift the per-connection buckets (the storm is about resume).
    return Step(label, "storm", "chat", "storm", plan, accounts=counsellors_for(connections),
                server=dict(NO_RATE_LIMITS))


def ramp_step(stack: str, steps: list[int], window: float, warmup: float) -> Step:
    plan = {
        "steps": steps, "capacity": CAPACITY, "deflate": False, "delivered_every": 1,
        "interval_min_secs": 10, "interval_max_secs": 20, "p99_limit_ms": 50,
        "window_secs": window, "warmup_secs": warmup,
        "max_secs": 200 + len(steps) * (window + warmup + 60),
    }
    return Step(f"ramp-{stack}", "ramp", stack, "ramp", plan,
                accounts=counsellors_for(max(steps)) if stack == "chat" else 0,
                server=dict(NO_RATE_LIMITS))


def claims_step(sizes: list[int], per_size: int) -> Step:
    plan = {"sizes": sizes, "claims_per_size": per_size, "capacity": CAPACITY,
            "deflate": False, "connect_concurrency": 200,
            "max_secs": 120 + sum(sizes) / 100}
    return Step("claims", "claims", "chat", "claims", plan, accounts=1, capacity=50,
                server=dict(NO_RATE_LIMITS))


# Each row changes one thing against the shipped defaults (freeze_only every
# 0.25 s without older collections, inline handlers, PacketQueue). Rows of
# policies no longer measured (freeze every 5 s/60 s with async handlers) are
# kept in docs/performance.md's archive.
LEVERS: list[tuple[str, dict[str, Any]]] = [
    # The two latest changes to the defaults, each taken away again.
    ("gc-older-default", {"gc_older_threshold": 0}),
    ("stock-queue", {"engineio_lean_queue": False}),
    ("gc-default_inline", {"gc_policy": "default", "socketio_async_handlers": False}),
    ("gc-freeze5s_inline", {"gc_policy": "freeze", "gc_freeze_interval_secs": 5,
                            "socketio_async_handlers": False}),
    ("gc-young1s_async", {"gc_policy": "freeze_young", "gc_freeze_interval_secs": 1,
                          "socketio_async_handlers": True}),
    ("gc-young1s_inline", {"gc_policy": "freeze_young", "gc_freeze_interval_secs": 1,
                           "socketio_async_handlers": False}),
]
# The peak again under other GC policies, side by side.
PEAK_LEVERS: list[tuple[str, dict[str, Any]]] = [
    # A queue round's pushes back to back in slices of 32 (before they were
    # spread out with a pause between slices).
    ("round-unspread", {"queue_round_slice_packets": 32, "queue_round_pause_ms": 0}),
    # The default before freeze_only (freeze_young every 1 s) and the same
    # timer at the new interval: what each half of the change gave.
    ("gc-young-1s", {"gc_policy": "freeze_young", "gc_freeze_interval_secs": 1}),
    ("gc-young-250ms", {"gc_policy": "freeze_young", "gc_freeze_interval_secs": 0.25}),
    # A full unfreeze-and-collect every minute instead of every hour: its pause
    # at the peak's heap, and (its "collected" count) how much frozen cyclic
    # garbage each policy leaves for it per minute.
    ("gc-only-full60s", {"gc_full_collect_interval_secs": 60}),
    # The automatic generation-1/-2 collections back on (the default before
    # gc_older_threshold): the tail, and how much frozen garbage they had
    # kept away.
    ("gc-older-default", {"gc_older_threshold": 0}),
    ("gc-older-default-full60s", {"gc_older_threshold": 0,
                                  "gc_full_collect_interval_secs": 60}),
    ("gc-young1s-full60s", {"gc_policy": "freeze_young", "gc_freeze_interval_secs": 1,
                            "gc_full_collect_interval_secs": 60}),
]


# The peak relays ~189 msg/s among ~10 350 connections (docs/performance.md);
# 0.019 msg/s per connection is that total over the 10 000 connections of a
# `peakrate` step (190 msg/s). Those steps relay at this rate on every stack,
# so the peak's tail has a bare-aiohttp floor in the same run: the generator,
# loopback and scheduling at that many sockets, without the queue, the claims
# or socket.io.
PEAK_RELAY_RATE = 0.019


def peakrate_steps(connections: int, window: float, stacks: tuple[str, ...]) -> list[Step]:
    return [relay_step(stack, connections, latency_window=window, saturate_window=None,
                       group="peakrate", latency_rate=PEAK_RELAY_RATE) for stack in stacks]


def full() -> list[Step]:
    # The big scenarios first: a run cut short still has the headline figures.
    steps: list[Step] = [
        peak_step(10000, 500, window=90.0, settle=30.0, ramp_per_sec=200, e2e_pairs=10),
        # The peak with whole queue views of 50 entries to every counsellor
        # every time, full ones too (as before queue_delta), next to the
        # shipped pushes (changes; the front only while at capacity).
        peak_step(10000, 500, window=90.0, settle=30.0, ramp_per_sec=200, e2e_pairs=2,
                  label="peak-snapshots", variant="snapshots",
                  server={"queue_deltas": False, "staff_queue_at_capacity_max": 50}),
        *(peak_step(10000, 500, window=90.0, settle=30.0, ramp_per_sec=200, e2e_pairs=2,
                    label=f"peak-{variant}", server=server, variant=variant)
          for variant, server in PEAK_LEVERS),
        *peakrate_steps(10000, 90.0, ("bare", "sio", "chat")),
        # 4 000 here; the storm at 10 000 runs last, at the peak's message
        # rate (see the end of this list).
        storm_step(4000, warmup=15.0),
        claims_step([100, 1000, 3000, 10000], per_size=40),
    ]
    for n in (1000, 4000, 10000):
        for stack in ("bare", "sio", "chat"):
            steps.append(relay_step(stack, n, latency_window=60.0 if n == 4000 else None,
                                    saturate_window=15.0, e2e_pairs=5 if n == 4000 else 0))
    # Saturation at 10 000 with the older collections back on, next to `chat`:
    # where they cost most (~19 % of the server's CPU, docs/performance.md).
    steps.append(relay_step("chat", 10000, latency_window=None, saturate_window=15.0,
                            group="levers", variant="gc-older-default-10k",
                            server={"gc_older_threshold": 0}))
    # Levers: a load chatserver sustains (250 msg/s at 4 000 connections, well
    # under its saturation), so the GC and handler effects show in the tail
    # instead of drowning in queueing.
    for variant, server in LEVERS:
        steps.append(relay_step("chat", 4000, latency_window=60.0, saturate_window=15.0,
                                group="levers", server=server, variant=variant,
                                latency_rate=0.0625))
    steps.append(relay_step("chat", 4000, latency_window=None, saturate_window=15.0,
                            group="levers", variant="deflate-offered", deflate=True))
    steps.append(ramp_step("chat", [2000, 5000, 8000, 11000, 14000, 17000, 19000],
                           window=30.0, warmup=5.0))
    # At 10 000 connections, a message every 2–6 s per member (as at 4 000) is
    # ~2 500 msg/s with every box acknowledged: more than one core relays
    # (docs/performance.md), so the storm would measure overload, not
    # recovery. The peak's rate (every 10–20 s) instead.
    steps.append(replace(storm_step(10000, warmup=15.0, label="storm-10000",
                                    interval=(10.0, 20.0)), group="storm10k"))
    return steps


def quick() -> list[Step]:
    steps = [relay_step(stack, 1000, latency_window=12.0, saturate_window=6.0, warmup=2.0,
                        e2e_pairs=2)
             for stack in ("bare", "sio", "chat")]
    steps.append(peak_step(1500, 75, window=20.0, settle=5.0, ramp_per_sec=500, e2e_pairs=2))
    steps += peakrate_steps(1500, 20.0, ("bare",))
    steps.append(storm_step(1000, warmup=4.0))
    steps.append(ramp_step("chat", [1000, 3000], window=8.0, warmup=2.0))
    steps.append(claims_step([100, 1000], per_size=15))
    return steps


def smoke() -> list[Step]:
    return [
        replace(relay_step("chat", 300, latency_window=4.0, saturate_window=3.0, warmup=1.0,
                           e2e_pairs=2), e2e_messages=4),
        storm_step(200, warmup=2.0, label="storm-smoke", drop_within=2.0, reconnect_within=2.0,
                   after=2.0),
    ]


def multinode_relay(label: str, nodes: int, redis: bool, placement: str, connections: int,
                    latency_window: float, saturate_window: float | None,
                    latency_rate: float) -> Step:
    step = relay_step("chat", connections, latency_window=latency_window,
                      saturate_window=saturate_window, group="multinode", warmup=5.0,
                      latency_rate=latency_rate)
    return replace(step, label=label, nodes=nodes, redis=redis,
                   plan={**step.plan, "placement": placement}, variant=placement)


def multinode(scale: float = 1.0) -> list[Step]:
    """One run, one generator: the same relay load on 1 node embedded, 1 node
    on Redis, 2 nodes on Redis with every conversation across the nodes, and
    2 nodes with every client on n1 (n2 only applies the log: the pure apply
    cost); then the peak spread over 2 nodes next to the same peak embedded,
    and kill -9 of one of two nodes under load. Every server-side process
    (nodes and Redis) shares the server core. ~8 min at scale 1."""
    conns = int(2000 * scale)
    # 0.1 msg/s per connection: 200 msg/s at 2 000, what one core relays
    # with room to spare embedded (it saturates at 3 600–5 900 msg/s).
    rate = 0.1
    win, sat = 25.0 * scale, 10.0 * scale
    steps = [
        multinode_relay("mn-embedded-1", 1, False, "", conns, win, sat, rate),
        multinode_relay("mn-redis-1", 1, True, "", conns, win, sat, rate),
        multinode_relay("mn-redis-2-cross", 2, True, "cross", conns, win, sat, rate),
        multinode_relay("mn-redis-2-on-n1", 2, True, "", conns, win, sat, rate),
    ]
    youths, counsellors = int(2500 * scale), int(125 * scale)
    for label, nodes, redis in (("mn-peak-embedded-1", 1, False), ("mn-peak-redis-2", 2, True)):
        peak = peak_step(youths, counsellors, window=30.0 * scale, settle=10.0,
                         ramp_per_sec=250, e2e_pairs=0, label=label)
        steps.append(replace(peak, group="multinode", nodes=nodes, redis=redis,
                             plan={**peak.plan, "placement": "alternate" if nodes > 1 else ""},
                             variant="alternate" if nodes > 1 else ""))
    # `after` outlasts the leader's declaring the killed node lost (its
    # heartbeat key expires after 6 s): the resumed conversations must
    # survive that command too.
    fail = storm_step(int(1000 * scale), warmup=5.0, label="mn-failover-2", after=15.0,
                      reconnect_within=2.0, interval=(2.0, 6.0))
    steps.append(replace(fail, group="multinode", scenario="failover", nodes=2, redis=True,
                         plan={**fail.plan, "placement": "cross", "kill_node": 0},
                         variant="cross"))
    return steps


def multinode_quick() -> list[Step]:
    return multinode(scale=0.25)


def multinode_smoke() -> list[Step]:
    """CI: two nodes on Redis, conversations across them, a few seconds of
    relay, then kill -9 of one node; integrity only, no timing."""
    relay = multinode_relay("mn-smoke-2-cross", 2, True, "cross", 200, 4.0, 3.0, 0.5)
    fail = storm_step(200, warmup=2.0, label="mn-smoke-failover", after=8.0,
                      reconnect_within=1.0)
    return [replace(relay, plan={**relay.plan, "latency": {**relay.plan["latency"],
                                                           "warmup_secs": 1.0}}),
            replace(fail, group="multinode", scenario="failover", nodes=2, redis=True,
                    plan={**fail.plan, "placement": "cross", "kill_node": 0},
                    variant="cross")]


def multinode_fullpeak() -> list[Step]:
    """The whole national peak (10 000 youths, 500 counsellors, as the full
    profile's `peak`) over 2 nodes on Redis, every server process on the
    server core: does it fit? Then kill -9 of one of two nodes holding as
    many connections as the peak: how long until every conversation is
    whole again? (~7 min; not part of `multinode`.)"""
    peak = peak_step(10000, 500, window=60.0, settle=20.0, ramp_per_sec=200, e2e_pairs=0,
                     label="mn-peak-full-redis-2")
    # Every conversation across the nodes, each member sending every 10-20 s
    # (the peak's rate); clients of the killed node come back within 2 s, as
    # a browser's backoff would bring them.
    fail = storm_step(10000, warmup=10.0, label="mn-failover-full-2", after=15.0,
                      reconnect_within=2.0, interval=(10.0, 20.0))
    return [replace(peak, group="multinode", nodes=2, redis=True,
                    plan={**peak.plan, "placement": "alternate"}, variant="alternate"),
            replace(fail, group="multinode", scenario="failover", nodes=2, redis=True,
                    plan={**fail.plan, "placement": "cross", "kill_node": 0},
                    variant="cross")]


PROFILES = {"full": full, "quick": quick, "smoke": smoke, "multinode": multinode,
            "multinode-quick": multinode_quick, "multinode-smoke": multinode_smoke,
            "multinode-fullpeak": multinode_fullpeak}
