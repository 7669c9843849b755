"""Instrumentation for the servers under test: every cyclic-GC collection's
generation and pause, via ``gc.callbacks`` (observation only; nothing in the
collector changes). Written as JSON to ``$LOADTEST_GC_STATS`` at shutdown,
so a report can show how often full collections stalled the loop and for how
long, per GC policy."""

from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

ENV = "LOADTEST_GC_STATS"


class GcStats:
    """Pauses are the collecting thread's CPU time (``time.thread_time``), not
    wall time: on a shared machine a collection can be descheduled halfway,
    and the wall time would blame the collector for someone else's work."""

    def __init__(self) -> None:
        self.started = 0.0
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self.collected: dict[int, int] = {0: 0, 1: 0, 2: 0}
        # GC CPU ms per generation in each second since start-up: which phase
        # of a step (connecting, warm-up, the window) the collections cost.
        self.t0 = time.monotonic()
        self.per_second: list[list[float]] = []

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.thread_time()
        else:
            gen = int(info.get("generation", 0))
            ms = (time.thread_time() - self.started) * 1000
            self.pauses[gen].append(ms)
            sec = int(time.monotonic() - self.t0)
            while len(self.per_second) <= sec:
                self.per_second.append([0.0, 0.0, 0.0])
            self.per_second[sec][gen] += ms
            self.collected[gen] += int(info.get("collected", 0))

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"frozen_objects_at_exit": gc.get_freeze_count(),
                               "tracked_objects_at_exit": len(gc.get_objects()),
                               "per_second_ms": [[round(ms, 1) for ms in s]
                                                 for s in self.per_second]}
        for gen, ps in self.pauses.items():
            ordered = sorted(ps)
            out[f"gen{gen}"] = {
                "count": len(ps), "total_ms": round(sum(ps), 1),
                "max_ms": round(ordered[-1], 1) if ordered else 0.0,
                "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))], 2) if ordered else 0.0,
                "collected": self.collected[gen],
                "over_50ms": sum(1 for p in ps if p > 50),
            }
        return out


def _write(path: str, summary: dict[str, Any]) -> None:
    # At shutdown, once: a blocking write costs nothing anyone waits for.
    Path(path).write_text(json.dumps(summary), encoding="utf-8")


def install(app: web.Application) -> None:
    """Add the hook to ``app`` when $LOADTEST_GC_STATS names a file."""
    path = os.environ.get(ENV)
    if not path:
        return
    stats = GcStats()

    async def ctx(_: web.Application) -> AsyncIterator[None]:
        gc.callbacks.append(stats)
        yield
        gc.callbacks.remove(stats)
        _write(path, stats.summary())

    app.cleanup_ctx.append(ctx)
