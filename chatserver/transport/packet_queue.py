"""The outgoing-packet queue of each engine.io connection, without the empty
deques of ``asyncio.Queue``.

python-engineio gives every connection a queue from its server's public
``create_queue()`` utility: an ``asyncio.Queue``, which allocates four empty
deques (items, getters, putters, and its ``join()`` event's waiters) up front.
That is ~3.5 KB per connection (measured: docs/performance.md), an eighth of
what an idle youth costs the server, while almost every queue is empty
almost all of the time: engine.io's writer drains it as soon as a packet
arrives, then waits in ``get()`` (one small list and a future while it
waits).

``PacketQueue`` has the whole public interface of an *unbounded*
``asyncio.Queue`` (put, put_nowait, get, get_nowait, task_done, join, qsize,
empty, full, maxsize) with the same behaviour, including cancellation, but
holds a deque of items only while there are items and a list of waiters only
while someone waits. ``use_packet_queues`` installs it as the engine.io
server's ``create_queue``; a bounded queue, asked for with arguments, is still
the library's own. Nothing of python-engineio is patched: it asks for a queue
through a public method and gets an object with the documented interface.
tests/unit/test_packet_queue.py drives it and ``asyncio.Queue`` with the same
random operations and compares every observable result (decision 0006).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any


class PacketQueue:
    """An unbounded FIFO queue for coroutines, behaving as ``asyncio.Queue()``."""

    __slots__ = ("_getters", "_items", "_joiners", "_unfinished")

    def __init__(self) -> None:
        # None, not an empty container, whenever there is nothing to hold:
        # that is the whole point of this class.
        self._items: deque[Any] | None = None
        self._getters: list[asyncio.Future[None]] | None = None
        self._unfinished = 0
        self._joiners: list[asyncio.Future[None]] | None = None

    def __repr__(self) -> str:
        return (f"<PacketQueue items={self.qsize()} "
                f"getters={len(self._getters or ())} tasks={self._unfinished}>")

    @property
    def maxsize(self) -> int:
        return 0

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return False  # unbounded, as asyncio.Queue(maxsize=0)

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def put_nowait(self, item: Any) -> None:
        items = self._items
        if items is None:
            items = self._items = deque()
        items.append(item)
        self._unfinished += 1
        self._wake_next_getter()

    async def get(self) -> Any:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            self._getters = _with(self._getters, getter)
            try:
                await getter
            except BaseException:
                # As asyncio.Queue.get: a getter cancelled after it was woken
                # passes its wake-up on, so no item is left with a waiter
                # asleep.
                getter.cancel()
                # (it may already be gone: the put that woke it took it off)
                self._getters = _without(self._getters, getter)
                if self._items and not getter.cancelled():
                    self._wake_next_getter()
                raise
        return self.get_nowait()

    def get_nowait(self) -> Any:
        items = self._items
        if not items:
            raise asyncio.QueueEmpty
        item = items.popleft()
        if not items:
            self._items = None
        return item

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._joiners is not None:
            joiners, self._joiners = self._joiners, None
            for joiner in joiners:
                if not joiner.done():
                    joiner.set_result(None)

    async def join(self) -> None:
        if self._unfinished == 0:
            return
        joiner = asyncio.get_running_loop().create_future()
        self._joiners = _with(self._joiners, joiner)
        try:
            await joiner
        finally:
            self._joiners = _without(self._joiners, joiner)

    def _wake_next_getter(self) -> None:
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                break
        if getters is not None and not getters:
            self._getters = None


Waiters = list[asyncio.Future[None]]


def _with(waiters: Waiters | None, waiter: asyncio.Future[None]) -> Waiters:
    if waiters is None:
        waiters = []
    waiters.append(waiter)
    return waiters


def _without(waiters: Waiters | None, waiter: asyncio.Future[None]) -> Waiters | None:
    """``waiters`` without ``waiter`` (if it is there); None once empty."""
    if waiters is not None and waiter in waiters:
        waiters.remove(waiter)
    return waiters or None


def use_packet_queues(eio: Any) -> None:
    """Make the engine.io server ``eio`` hand out ``PacketQueue`` for the
    argument-less ``create_queue()`` each connection calls."""
    stock: Callable[..., Any] = eio.create_queue

    def create_queue(*args: Any, **kwargs: Any) -> Any:
        if args or kwargs:
            return stock(*args, **kwargs)  # a bounded queue: the library's own
        return PacketQueue()

    eio.create_queue = create_queue
