"""The server's cyclic-garbage-collector strategy (docs/decisions/0002).

Why: with a few thousand clients connected, CPython's generation-2
collections walk every tracked object (engine.io and socket.io sessions,
aiohttp protocol and WebSocket objects, our conversation state) and stall the
event loop for hundreds of milliseconds every few seconds. Those stalls were
the whole p99 tail of stock python-socketio (docs/performance.md).

``freeze`` moves long-lived objects into the permanent
generation with ``gc.freeze()``, which no automatic collection walks, so a
collection costs what was allocated recently rather than the whole heap:

- after start-up;
- right after every automatic generation-2 collection: whatever survived it
  is long-lived by definition (connections, conversations, sessions live
  minutes to hours), so the next full collection will not walk it again.
  Without this, a fast ramp (thousands of clients arriving) keeps the
  unfrozen heap large and full collections long between timer ticks;
- every ``gc_freeze_interval_secs``, after a collection of what is not
  frozen, to catch survivors that reached the old generation without a full
  collection.

The price: a frozen object that later becomes cyclic garbage is not reclaimed
until it is unfrozen. Every ``gc_full_collect_interval_secs`` — and after
every ``gc_full_collect_after_websockets`` WebSockets opened (at most once
per ``FULL_AFTER_WEBSOCKETS_MIN_GAP_SECS``), because each closed WebSocket
leaves ~14 KB in a reference cycle inside python-engineio
(docs/decisions/0007) — the task unfreezes everything, runs one full
collection (one pause, its length proportional to the live heap: ~1.7 s at
10 000 connections on the test machine, docs/performance.md) and freezes
again. 0 turns either trigger off.

``freeze_young`` does the same, but its timer collects only the young
generations (0 and 1) before freezing: with 10 000 connections churning,
the full collection of everything unfrozen since the last tick took 50–330 ms
every few seconds (docs/performance.md, peak). A young collection walks only
what survived since the last tick. Cyclic garbage that dies after surviving
a young collection is frozen with the rest and waits for the periodic full
collection below — bounded by ``gc_full_collect_interval_secs``.

``freeze_only`` (the default) does the same, but its timer collects nothing:
it freezes, every ``gc_freeze_interval_secs`` (0.25 s). Measured at the
national peak, each ``gc.collect(1)`` of ``freeze_young`` walked the
engine.io tasks, futures and timers re-made for every message (tens of
thousands of live young objects a second) and was itself the longest stall
left; freezing them a quarter of a second after they are made keeps every
young collection small, and the timer costs nothing. The automatic
generation-0 collections in between still free short-lived cycles; a cycle
that has not met one before the next tick is frozen and waits for the
periodic full collection — measured, that left no more for it than
``freeze_young`` (the run's figures: docs/performance.md, decision 0002).

Under every freeze policy with a timer, the automatic *older* collections
(generations 1 and 2) are switched off by ``gc_older_threshold``: they
walked young survivors that the next tick freezes anyway, and at relay
saturation they were three quarters of the collector's CPU (generation-1
118 ms and generation-2 74 ms a second against generation-0's 63 at 10 000
connections; docs/performance.md). What they used to free — a cycle that
survived one young collection and died before the tick — is frozen with the
rest and waits for the full collection, like every other frozen cycle.

``default``: the interpreter as shipped; for comparison runs.

Call :func:`install` once the app is running (from its ``cleanup_ctx``); it
returns the background task to cancel on shutdown, or ``None`` when there is
nothing to run.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

from chatserver.settings import Settings

log = logging.getLogger(__name__)


def install(settings: Settings,
            websockets: Callable[[], int] | None = None) -> asyncio.Task[None] | None:
    """Apply ``settings.gc_policy``. Idempotent: a process whose heap is already
    frozen (a second call) gets ``None`` and nothing changes. ``websockets``
    counts the WebSockets opened since start, for
    ``gc_full_collect_after_websockets``."""
    if settings.gc_policy == "default":
        return None
    if gc.get_freeze_count() > 0:
        return None
    shipped = gc.get_threshold()
    young, older, oldest = shipped
    if settings.gc_young_threshold > 0:
        young = settings.gc_young_threshold
    if settings.gc_older_threshold > 0 and settings.gc_freeze_interval_secs > 0:
        # Only with a timed freeze: without one, nothing else would ever move
        # young survivors out of the way, and the older collections would be
        # the only thing freeing their cycles before the full collection.
        older = oldest = settings.gc_older_threshold
    gc.set_threshold(young, older, oldest)
    _collect_and_freeze()
    task = asyncio.get_running_loop().create_task(
        _run(settings.gc_freeze_interval_secs, settings.gc_full_collect_interval_secs,
             collect=TICK_COLLECTS[settings.gc_policy],
             websockets=websockets or (lambda: 0),
             full_after_websockets=settings.gc_full_collect_after_websockets),
        name="gc-policy")
    task.add_done_callback(lambda t: _ended(t, shipped))
    return task


def _ended(task: asyncio.Task[None], shipped: tuple[int, int, int]) -> None:
    # Without the task's ticks and full collections, thresholds that rely on
    # them would let young survivors and their cycles pile up unwalked: give
    # the interpreter its own collector back, whether the task was cancelled
    # (shutdown) or died.
    gc.set_threshold(*shipped)
    if not task.cancelled() and task.exception() is not None:
        log.error("gc: the policy task failed; the interpreter's collector is back",
                  exc_info=task.exception())


# The full-collection triggers are checked this often when nothing is frozen on
# a timer (gc_freeze_interval_secs = 0).
NO_FREEZE_TICK_SECS = 1.0
# At most one full collection per this many seconds from the WebSocket count.
FULL_AFTER_WEBSOCKETS_MIN_GAP_SECS = 300.0

# What each policy's timer collects before it freezes: every generation, the
# young ones, or nothing (the automatic young collections run in between).
TICK_COLLECTS: dict[str, int | None] = {"freeze": 2, "freeze_young": 1, "freeze_only": None}


def _collect_and_freeze(generation: int | None = 2) -> None:
    # Collect first: whatever is garbage now must not be frozen for good.
    # Only unfrozen objects are walked, so this costs what was allocated since
    # the last freeze, not the whole heap.
    if generation is not None:
        gc.collect(generation)
    gc.freeze()


def _full_collect() -> float:
    started = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return time.perf_counter() - started


class _FreezeAfterFullCollection:
    """A ``gc.callbacks`` hook. It never touches the collector itself (that is
    not allowed during a collection, and the collection may run in another
    thread, e.g. aiosqlite's); it asks the event loop to freeze right after."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending = False

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info.get("generation") != 2 or self._pending:
            return
        self._pending = True
        try:
            self._loop.call_soon_threadsafe(self._freeze)
        except RuntimeError:  # the loop is closing
            self._pending = False

    def _freeze(self) -> None:
        self._pending = False
        gc.freeze()


async def _run(interval_secs: float, full_every_secs: float, collect: int | None = 2,
               websockets: Callable[[], int] = lambda: 0,
               full_after_websockets: int = 0) -> None:
    hook = _FreezeAfterFullCollection(asyncio.get_running_loop())
    gc.callbacks.append(hook)
    try:
        if interval_secs <= 0 and full_every_secs <= 0 and full_after_websockets <= 0:
            await asyncio.Event().wait()  # only the hook; wait for cancellation
        # gc_freeze_interval_secs = 0 means no timed freeze, not no full collection.
        tick = interval_secs if interval_secs > 0 else NO_FREEZE_TICK_SECS
        last_full = time.monotonic()
        opened_at_last_full = websockets()
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            opened = websockets() - opened_at_last_full
            why = ""
            if full_every_secs > 0 and now - last_full >= full_every_secs:
                why = "timer"
            elif 0 < full_after_websockets <= opened and \
                    now - last_full >= FULL_AFTER_WEBSOCKETS_MIN_GAP_SECS:
                # Enough closed connections' cycles are frozen (decision 0007).
                # The gap: opening WebSockets is cheap, and each full collection
                # pauses everyone.
                why = "websockets"
            if why:
                pause = _full_collect()
                last_full = time.monotonic()
                opened_at_last_full = websockets()
                log.info("gc: full collection (%s; %d WebSockets since the last) took %.0f ms",
                         why, opened, pause * 1000)
            elif interval_secs > 0:
                _collect_and_freeze(collect)
    finally:
        gc.callbacks.remove(hook)
