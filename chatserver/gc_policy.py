"""The server's cyclic-garbage-collector strategy (docs/decisions/0002).

Why: with a few thousand clients connected, CPython's generation-2
collections walk every tracked object (~60 per connection: engine.io and
socket.io sessions, aiohttp protocol and WebSocket objects, our conversation
state) and stall the event loop for hundreds of milliseconds every few
seconds. Those stalls were the whole p99 tail of stock python-socketio
(docs/performance.md).

``freeze`` (the default): after start-up, and then every
``gc_freeze_interval_secs``, collect what is young and freeze the rest with
``gc.freeze()``. Frozen objects sit in the permanent generation, which no
automatic collection walks, so a full collection costs only what was
allocated since the last freeze. Connections, conversations and sessions live
minutes to hours, so nearly everything that survives one interval is frozen
soon after it is made.

The price: a frozen object that later becomes cyclic garbage is not reclaimed
until it is unfrozen. Every ``gc_full_collect_interval_secs`` the task
unfreezes everything, runs one full collection (one pause, its length
proportional to the live heap; measured in docs/performance.md) and freezes
again. 0 turns that off.

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

from chatserver.settings import Settings

log = logging.getLogger(__name__)


def install(settings: Settings) -> asyncio.Task[None] | None:
    """Apply ``settings.gc_policy``. Idempotent: a process whose heap is already
    frozen (a second call) gets ``None`` and nothing changes."""
    if settings.gc_policy == "default":
        return None
    if gc.get_freeze_count() > 0:
        return None
    _collect_and_freeze()
    if settings.gc_freeze_interval_secs <= 0:
        return None
    return asyncio.get_running_loop().create_task(
        _refreeze(settings.gc_freeze_interval_secs, settings.gc_full_collect_interval_secs),
        name="gc-policy")


def _collect_and_freeze() -> None:
    # Collect first: whatever is garbage now must not be frozen for good.
    # Only unfrozen objects are walked, so this costs what was allocated since
    # the last freeze, not the whole heap.
    gc.collect()
    gc.freeze()


def _full_collect() -> float:
    started = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return time.perf_counter() - started


async def _refreeze(interval_secs: float, full_every_secs: float) -> None:
    last_full = time.monotonic()
    while True:
        await asyncio.sleep(interval_secs)
        if full_every_secs > 0 and time.monotonic() - last_full >= full_every_secs:
            pause = _full_collect()
            last_full = time.monotonic()
            log.info("gc: full collection took %.0f ms", pause * 1000)
        else:
            _collect_and_freeze()
