"""PacketQueue (chatserver/transport/packet_queue.py) must behave exactly like
an unbounded ``asyncio.Queue``: python-engineio is entitled to use any of the
queue's public methods, in any order, with cancellations in between.

The differential test runs the same random script of operations against both
on a real event loop (getter and joiner tasks, getters inside ``wait_for`` as
engine.io's writer waits, cancellations, including of a getter a put has just
woken) and compares every observable result after every step; afterwards the
PacketQueue must hold no waiter it has no use for. The other tests pin the
writer's time-out, the hand-over of a cancelled wake-up, and what the class
is for: no deques held while idle.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest

from chatserver.transport.packet_queue import PacketQueue, use_packet_queues

OPS = ("put", "put_nowait", "get_nowait", "getter", "getter", "timed_getter", "cancel",
       "joiner", "task_done", "task_done", "observe", "yield", "yield")


def script(seed: int, length: int = 120) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    return [(rng.choice(OPS), rng.randrange(1000)) for _ in range(length)]


async def run(make: Callable[[], Any], steps: list[tuple[str, int]]) -> tuple[list[Any], Any]:
    """Play ``steps`` on a fresh queue; return everything one could observe,
    and the queue."""
    q = make()
    tasks: list[asyncio.Task[Any]] = []
    trace: list[Any] = []

    async def timed_get() -> Any:
        # engine.io's writer: ``wait_for(queue.get(), timeout)``. A timeout
        # that never expires here, so the script stays deterministic; the
        # "cancel" op then cancels it through wait_for, as a closing
        # connection does (the expiry itself: test_the_writers_time_out_...).
        return await asyncio.wait_for(q.get(), 3600)

    for op, arg in steps:
        result: Any = None
        try:
            if op == "put":
                await q.put(arg)
            elif op == "put_nowait":
                q.put_nowait(arg)
            elif op == "get_nowait":
                result = q.get_nowait()
            elif op == "getter":
                tasks.append(asyncio.ensure_future(q.get()))
            elif op == "timed_getter":
                tasks.append(asyncio.ensure_future(timed_get()))
            elif op == "joiner":
                tasks.append(asyncio.ensure_future(q.join()))
            elif op == "cancel" and tasks:
                # No yield first: a task woken by a put is cancelled before it
                # ran, the case where a queue must pass the wake-up on.
                result = tasks[arg % len(tasks)].cancel()
            elif op == "task_done":
                q.task_done()
            elif op == "observe":
                result = (q.qsize(), q.empty(), q.full(), q.maxsize)
            elif op == "yield":
                for _ in range(arg % 4):
                    await asyncio.sleep(0)
        except (asyncio.QueueEmpty, ValueError) as exc:
            result = type(exc).__name__
        trace.append((op, result, [_state(t) for t in tasks]))
    # Settle: drain what is left so every getter that can finish does.
    for _ in range(5):
        await asyncio.sleep(0)
    trace.append(("end", q.qsize(), [_state(t) for t in tasks]))
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return trace, q


def _state(task: asyncio.Task[Any]) -> Any:
    if not task.done():
        return "pending"
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    return type(exc).__name__ if exc else ("ok", task.result())


@pytest.mark.parametrize("seed", range(300))
async def test_behaves_as_an_unbounded_asyncio_queue(seed: int) -> None:
    steps = script(seed)
    expected, _ = await run(asyncio.Queue, steps)
    trace, q = await run(PacketQueue, steps)
    assert trace == expected
    # Every waiter is gone: nothing of a cancelled getter or joiner is kept.
    assert q._getters is None and q._joiners is None
    assert (q._items is None) == (q.qsize() == 0)


async def test_the_script_reaches_the_hard_cases() -> None:
    # The differential test is only as good as its scripts: check that they
    # produce cancelled waiters, items taken by waiting getters, finished
    # joiners and refused task_done calls, on the library's own queue.
    seen: set[str] = set()
    for seed in range(300):
        trace, _ = await run(asyncio.Queue, script(seed))
        for op, result, states in trace:
            if op == "task_done" and result == "ValueError":
                seen.add("task_done refused")
            if op == "get_nowait" and result == "QueueEmpty":
                seen.add("empty")
            seen.update("cancelled" for s in states if s == "cancelled")
            seen.update("got" for s in states if isinstance(s, tuple) and s[1] is not None)
            seen.update("joined" for s in states if s == ("ok", None))
    assert seen == {"task_done refused", "empty", "cancelled", "got", "joined"}


async def test_the_writers_time_out_leaves_nothing_behind() -> None:
    # engine.io's writer: wait_for(get(), ping_interval + ping_timeout) on an
    # idle connection expires; the queue must drop that getter and still work.
    q = PacketQueue()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(q.get(), 0.01)
    assert q._getters is None
    writer = asyncio.ensure_future(asyncio.wait_for(q.get(), 5))
    await asyncio.sleep(0)
    q.put_nowait("ping")
    assert await writer == "ping" and q._getters is None and q._items is None


async def test_a_woken_getter_cancelled_before_it_runs_passes_the_item_on() -> None:
    q = PacketQueue()
    first = asyncio.ensure_future(q.get())
    second = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    q.put_nowait("packet")  # wakes `first`...
    first.cancel()  # ...which is cancelled before it could take the packet
    assert await asyncio.wait_for(second, 1) == "packet"
    assert first.cancelled()


async def test_idle_queue_holds_no_containers() -> None:
    q = PacketQueue()
    assert (q._items, q._getters, q._joiners) == (None, None, None)
    writer = asyncio.ensure_future(q.get())
    await asyncio.sleep(0)
    assert q._getters  # someone waits: now there is a list
    await q.put("a")
    await q.put("b")
    assert await writer == "a" and q.get_nowait() == "b"
    joiner = asyncio.ensure_future(q.join())
    await asyncio.sleep(0)
    q.task_done()
    q.task_done()
    await asyncio.wait_for(joiner, 1)
    # Drained, nobody waiting, nothing unfinished: back to three Nones.
    assert (q._items, q._getters, q._joiners, q.qsize()) == (None, None, None, 0)


def test_only_the_argument_less_queue_is_replaced() -> None:
    class Server:
        def create_queue(self, *args: Any, **kwargs: Any) -> Any:
            return asyncio.Queue(*args, **kwargs)

    server = Server()
    use_packet_queues(server)
    assert isinstance(server.create_queue(), PacketQueue)
    bounded = server.create_queue(maxsize=3)
    assert isinstance(bounded, asyncio.Queue) and bounded.maxsize == 3
