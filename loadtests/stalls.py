"""Where the event loop stalls, for diagnosis runs: every callback the loop
runs that takes longer than a threshold, labelled by what it ran (a task's
coroutine, or the callback's name), and every GC pause by wall time.

Enabled by ``python -m loadtests run ... --stalls`` (the runner then names a
file per server, ``logs/stalls-<stack>-<port>.json``, in ``$LOADTEST_STALLS``);
written there as JSON at shutdown. At every third generation-1 collection
and every 40th generation-0 one it also records what the collection is about
to walk (objects and references by type, ``young``). It wraps
``asyncio.events.Handle._run`` in the load server's process only — an
observation tool for the harness, never part of chatserver — and costs two
clock reads per callback, so runs with it are not the reported figures.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from loadtests.cycles import cyclic_garbage

ENV = "LOADTEST_STALLS"
# Seconds after start at which to count the cyclic garbage (frozen included)
# by type, e.g. "120,150": the difference is what 30 s of load left.
CENSUS_ENV = "LOADTEST_GARBAGE_CENSUS_AT"
THRESHOLD_MS = 5.0


def _label(handle: asyncio.Handle) -> str:
    cb = getattr(handle, "_callback", None)
    # A task's step is a method of the task; its wake-up gets the task as an argument.
    for candidate in (getattr(cb, "__self__", None), *(getattr(handle, "_args", None) or ())):
        if isinstance(candidate, asyncio.Task):
            coro = candidate.get_coro()
            return f"task {getattr(coro, '__qualname__', repr(coro))} ({candidate.get_name()})"
    return str(getattr(cb, "__qualname__", None) or type(cb).__name__)


class Stalls:
    def __init__(self) -> None:
        self.by_label: dict[str, list[float]] = defaultdict(list)
        # Bounded: only the last of these are written out anyway.
        self.timeline: deque[tuple[float, float, str]] = deque(maxlen=5000)
        self.gc_started = 0.0
        self.gc_pauses: deque[tuple[float, int, float]] = deque(maxlen=5000)
        self.t0 = time.monotonic()
        self.callbacks = 0
        self.busy = 0.0
        self.young: list[dict[str, Any]] = []
        self.seen: dict[int, int] = {}
        self.censuses: list[dict[str, Any]] = []

    def sample_young(self, generation: int) -> None:
        """What a young collection would walk: objects in generations 0 and 1
        by type, with the references their traversal visits."""
        by_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for gen in range(generation + 1):
            for obj in gc.get_objects(gen):
                row = by_type[type(obj).__qualname__]
                row[0] += 1
                row[1] += len(gc.get_referents(obj))
        top = sorted(by_type.items(), key=lambda kv: -kv[1][1])[:12]
        self.young.append({"t": round(time.monotonic() - self.t0, 3), "gen": generation,
                           "objects": sum(v[0] for v in by_type.values()),
                           "refs": sum(v[1] for v in by_type.values()),
                           "top": [[k, v[0], v[1]] for k, v in top]})

    def gc_hook(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gen = int(info.get("generation", 0))
            self.seen[gen] = self.seen.get(gen, 0) + 1
            if (gen == 1 and self.seen[gen] % 3 == 0) or (gen == 0 and self.seen[gen] % 40 == 0):
                self.sample_young(gen)  # what this collection is about to walk
            self.gc_started = time.perf_counter()
        else:
            ms = (time.perf_counter() - self.gc_started) * 1000
            if ms >= 1.0:
                self.gc_pauses.append((round(time.monotonic() - self.t0, 3),
                                       int(info.get("generation", 0)), round(ms, 2)))

    def garbage_census(self) -> None:
        """What cyclic garbage the heap holds, frozen included: unfreeze, collect
        with DEBUG_SAVEALL (the unreachable objects are kept in gc.garbage
        instead of freed), count them by type, free them, freeze again. One
        long pause; diagnosis only."""
        started = time.perf_counter()
        gc.unfreeze()
        try:
            total, by_type, _ = cyclic_garbage()
        finally:
            gc.freeze()
        self.censuses.append({"t": round(time.monotonic() - self.t0, 1), "garbage": total,
                              "secs": round(time.perf_counter() - started, 2),
                              "top": by_type.most_common(40)})

    def summary(self) -> dict[str, Any]:
        rows: list[dict[str, Any]] = []
        for label, ms in self.by_label.items():
            ms.sort()
            rows.append({"label": label, "count": len(ms), "total_ms": round(sum(ms), 1),
                         "max_ms": round(ms[-1], 1), "p50_ms": round(ms[len(ms) // 2], 1)})
        rows.sort(key=lambda r: -r["total_ms"])
        return {"threshold_ms": THRESHOLD_MS, "callbacks": self.callbacks,
                "busy_secs": round(self.busy, 2), "stalls": rows,
                "timeline": list(self.timeline), "gc_pauses": list(self.gc_pauses),
                "young": self.young, "censuses": self.censuses}


def install(app: web.Application) -> None:
    path = os.environ.get(ENV)
    if not path or path == "1":
        return
    stalls = Stalls()
    original = asyncio.events.Handle._run
    perf = time.perf_counter

    def _run(self: asyncio.Handle) -> None:
        started = perf()
        original(self)
        ms = (perf() - started) * 1000
        stalls.callbacks += 1
        stalls.busy += ms / 1000
        if ms >= THRESHOLD_MS:
            label = _label(self)
            stalls.by_label[label].append(ms)
            stalls.timeline.append((round(time.monotonic() - stalls.t0, 3), round(ms, 2), label))

    async def census_at(times: list[float]) -> None:
        for at in times:
            await asyncio.sleep(max(0.0, at - (time.monotonic() - stalls.t0)))
            stalls.garbage_census()

    async def ctx(_: web.Application) -> AsyncIterator[None]:
        asyncio.events.Handle._run = _run  # type: ignore[method-assign]
        gc.callbacks.append(stalls.gc_hook)
        census = os.environ.get(CENSUS_ENV)
        task = asyncio.get_running_loop().create_task(
            census_at([float(t) for t in census.split(",")])) if census else None
        yield
        if task is not None:
            task.cancel()
        gc.callbacks.remove(stalls.gc_hook)
        asyncio.events.Handle._run = original  # type: ignore[method-assign]
        # At shutdown, once: a blocking write costs nothing anyone waits for.
        Path(path).write_text(json.dumps(stalls.summary()), encoding="utf-8")  # noqa: ASYNC240

    app.cleanup_ctx.append(ctx)
