"""chatserver/gc_policy.py: what each policy does to the collector.

``gc.freeze()`` and thresholds are process-wide, so every case runs in a
fresh interpreter (a subprocess) and reports what it saw as JSON.

A probe waits for the policy's ticks, counted, never for a time: on a loaded
machine the ticks come late, and a probe that slept a fixed time would see
fewer of them than it needs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from chatserver.settings import REPO_ROOT
from tests.conftest import TEST_CONFIG

# Every probe: the settings from argv[1] (overrides), argv[2] (config file),
# argv[3] (data dir); further argv are the probe's own. Prints one JSON line.
PROBE_HEAD = textwrap.dedent("""
    import asyncio, gc, json, sys, time, weakref
    from chatserver import gc_policy
    from chatserver.settings import load_settings

    settings = load_settings(config_file=sys.argv[2], env={"CHAT_DATA_DIR": sys.argv[3]},
                             overrides=json.loads(sys.argv[1]))

    class Node:
        def __init__(self):
            self.me = self  # a reference cycle: only the cyclic collector frees it

    # Count what the policy does (the real functions still do it): "freezes"
    # is every collect-and-freeze (the one at install, then one per tick),
    # "fulls" every full collection (a tick that runs one does not freeze).
    done = {"freezes": 0, "fulls": 0}
    _freeze, _full = gc_policy._collect_and_freeze, gc_policy._full_collect

    def _counted_freeze(*args):
        done["freezes"] += 1
        return _freeze(*args)

    def _counted_full():
        done["fulls"] += 1
        return _full()

    gc_policy._collect_and_freeze, gc_policy._full_collect = _counted_freeze, _counted_full

    def ticks():
        return done["freezes"] + done["fulls"]

    async def until(check):
        deadline = time.monotonic() + 30  # only bounds a hang
        while not check():
            if time.monotonic() > deadline:
                raise SystemExit("probe: the policy's task never got there")
            await asyncio.sleep(0.01)
""")


def _run_probe(body: str, tmp_path: Path, overrides: dict[str, Any],
               *args: object) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE_HEAD + textwrap.dedent(body), json.dumps(overrides),
         str(TEST_CONFIG), str(tmp_path / "var"), *map(str, args)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


PROBE = """
    async def main():
        out = {"threshold_before": gc.get_threshold()[0]}
        task = gc_policy.install(settings)
        out["task"] = task is not None
        out["frozen_at_start"] = gc.get_freeze_count()
        out["second_install"] = gc_policy.install(settings) is not None
        keep = [Node() for _ in range(2000)]  # long-lived: should be frozen by a tick
        dead = Node()
        ref = weakref.ref(dead)
        del dead  # cyclic garbage, younger than the next tick
        frozen_before_tick = gc.get_freeze_count()
        if task is not None:  # two ticks, and the full collections asked for
            start = ticks()
            await until(lambda: ticks() >= start + 2 and done["fulls"] >= int(sys.argv[4]))
        out["frozen_grew"] = gc.get_freeze_count() >= frozen_before_tick + len(keep)
        # gc.get_objects() lists generations 0-2 only: frozen objects are not in it
        collectable = {id(o) for o in gc.get_objects()}
        out["keep_frozen"] = not any(id(k) in collectable for k in keep)
        out["garbage_collected"] = ref() is None
        out["threshold_after"] = gc.get_threshold()[0]
        if task is not None:
            task.cancel()
        print(json.dumps(out))

    asyncio.run(main())
"""


def _probe(tmp_path: Path, fulls: int = 0, **overrides: Any) -> dict[str, Any]:
    """Run PROBE; with a policy task, wait for two ticks and ``fulls`` full collections."""
    return _run_probe(PROBE, tmp_path, overrides, fulls)


@pytest.mark.parametrize("policy", ["freeze", "freeze_young"])
def test_freeze_policies_freeze_survivors_and_collect_young_cycles(
        tmp_path: Path, policy: str) -> None:
    seen = _probe(tmp_path, gc_policy=policy, gc_freeze_interval_secs=0.05)
    assert seen["task"] and seen["frozen_at_start"] > 0
    assert seen["second_install"] is False  # idempotent: one policy task per process
    assert seen["frozen_grew"] and seen["keep_frozen"]  # long-lived objects leave the walk
    assert seen["garbage_collected"]  # a cycle that died before the tick is not frozen
    assert seen["threshold_after"] == seen["threshold_before"]


def test_freeze_only_freezes_each_tick_and_the_full_collection_reclaims(
        tmp_path: Path) -> None:
    # The tick collects nothing (a cycle that died since the last automatic
    # young collection is frozen with the rest); the periodic full collection
    # is what bounds that garbage.
    seen = _probe(tmp_path, fulls=1, gc_policy="freeze_only", gc_freeze_interval_secs=0.05,
                  gc_full_collect_interval_secs=0.1)
    assert seen["task"] and seen["frozen_at_start"] > 0
    assert seen["second_install"] is False
    assert seen["keep_frozen"]  # (the full collection unfreezes and refreezes)
    assert seen["garbage_collected"]
    assert seen["threshold_after"] == seen["threshold_before"]


def test_every_freeze_policy_says_what_its_tick_collects() -> None:
    from chatserver.gc_policy import TICK_COLLECTS
    from chatserver.settings import GC_POLICIES
    assert set(TICK_COLLECTS) == set(GC_POLICIES) - {"default"}


def test_young_threshold_lever(tmp_path: Path) -> None:
    seen = _probe(tmp_path, gc_policy="freeze_young", gc_freeze_interval_secs=0.05,
                  gc_young_threshold=5000)
    assert seen["threshold_after"] == 5000


OLDER_PROBE = """
    async def main():
        shipped = gc.get_threshold()
        task = gc_policy.install(settings)
        before = [g["collections"] for g in gc.get_stats()]
        keep = []
        for i in range(200):  # survivors and cycles, as a busy server makes them
            keep.append([Node() for _ in range(200)])
            for _ in range(200):
                Node()
            if len(keep) > 20:
                keep.pop(0)
            await asyncio.sleep(0.002)  # the policy's ticks run in between
        after = [g["collections"] for g in gc.get_stats()]
        threshold = gc.get_threshold()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        print(json.dumps({"threshold": threshold, "shipped": shipped,
                          "restored": gc.get_threshold(),
                          "collections": [a - b for a, b in zip(after, before)]}))

    asyncio.run(main())
"""


@pytest.mark.parametrize(("overrides", "older_run"), [
    ({}, False),  # shipped: young collections only (config/test.toml keeps "default")
    ({"gc_older_threshold": 0}, True),  # the interpreter's 10 / 10
    ({"gc_freeze_interval_secs": 0}, True),  # no timed freeze: older ones stay on
])
def test_older_collections_are_off_under_a_timed_freeze(
        tmp_path: Path, overrides: dict[str, Any], older_run: bool) -> None:
    # The tick freezes what a generation-1 or -2 collection would walk; at
    # relay saturation those were three quarters of the collector's CPU.
    # A 30 s tick, so none comes during the probe: a freeze resets the
    # interpreter's generation counts, and whether >10 young collections fell
    # between two ticks would depend on the machine's speed.
    seen = _run_probe(OLDER_PROBE, tmp_path, {"gc_policy": "freeze_only",
                                              "gc_freeze_interval_secs": 30, **overrides})
    young, gen1, gen2 = seen["collections"]
    assert young > 50  # the workload does make the young collections run
    assert (gen1 + gen2 > 0) is older_run
    assert (seen["threshold"][1] == 1_000_000) is not older_run
    # Once the policy's task ends (shutdown, or a crash), the interpreter's
    # own thresholds are back: nothing would freeze or fully collect anymore.
    assert seen["restored"] == seen["shipped"]


def test_default_policy_leaves_the_collector_alone(tmp_path: Path) -> None:
    seen = _probe(tmp_path, gc_policy="default", gc_young_threshold=5000)
    assert seen == {**seen, "task": False, "frozen_at_start": 0, "frozen_grew": False,
                    "keep_frozen": False, "threshold_after": seen["threshold_before"]}


FULL_AFTER_PROBE = """
    gc_policy.FULL_AFTER_WEBSOCKETS_MIN_GAP_SECS = float(sys.argv[5])
    gc_policy.NO_FREEZE_TICK_SECS = 0.05
    opened = [0]
    asked = [0]  # the task reads the count once as it starts, then once a tick

    def websockets():
        asked[0] += 1
        return opened[0]

    async def main():
        node = Node()
        ref = weakref.ref(node)
        task = gc_policy.install(settings, websockets)  # freezes it, alive
        await until(lambda: asked[0] >= 1)  # the task has its starting count
        del node  # frozen cyclic garbage now: no automatic collection walks it
        gc.collect()
        out = {"kept_while_frozen": ref() is not None}
        opened[0] += int(sys.argv[4])  # WebSockets opened meanwhile
        read = asked[0]
        await until(lambda: asked[0] >= read + 2)  # two ticks have seen the new count
        out["alive_after"] = ref() is not None
        task.cancel()
        print(json.dumps(out))

    asyncio.run(main())
"""


@pytest.mark.parametrize(("opened", "min_gap", "freeze_every", "reclaimed"), [
    (10, 0, 0.05, True),
    (9, 0, 0.05, False),
    (10, 300, 0.05, False),  # not again within the minimum gap
    (10, 0, 0, True),  # no timed freeze does not mean no full collection
])
def test_enough_websockets_start_a_full_collection(
        tmp_path: Path, opened: int, min_gap: float, freeze_every: float,
        reclaimed: bool) -> None:
    # Each closed WebSocket leaves a frozen cycle (decision 0007): the policy
    # runs its full collection after gc_full_collect_after_websockets are
    # opened, not only on its hourly timer.
    seen = _run_probe(FULL_AFTER_PROBE, tmp_path,
                      {"gc_policy": "freeze_only", "gc_freeze_interval_secs": freeze_every,
                       "gc_full_collect_interval_secs": 0,
                       "gc_full_collect_after_websockets": 10}, opened, min_gap)
    assert seen["kept_while_frozen"]  # even an explicit gc.collect() leaves it
    assert seen["alive_after"] is not reclaimed


TICK_PROBE = """
    async def main():
        task = gc_policy.install(settings)
        gc.disable()  # no automatic collection: only what the tick itself does counts
        node = Node()
        ref = weakref.ref(node)
        del node  # garbage before the next tick
        start = done["freezes"]
        await until(lambda: done["freezes"] > start)  # a tick has collected and frozen
        print(json.dumps({"collected_by_tick": ref() is None}))
        task.cancel()

    asyncio.run(main())
"""


@pytest.mark.parametrize(("policy", "collects"), [("freeze_only", False),
                                                  ("freeze_young", True)])
def test_what_a_tick_collects_before_it_freezes(tmp_path: Path, policy: str,
                                                collects: bool) -> None:
    seen = _run_probe(TICK_PROBE, tmp_path,
                      {"gc_policy": policy, "gc_freeze_interval_secs": 0.05})
    assert seen["collected_by_tick"] is collects
