"""Pickling the whole live state without stopping the event loop.

A snapshot of a national peak's state (10 000 youths) stopped the leader's
loop for 0.4–0.5 s while it was pickled: every message through that node
waited (docs/performance.md, "The peak over two nodes"). Here a forked
child pickles its copy of the state as it was at the fork and hands the
bytes back through a pipe; the parent's loop goes on once the fork returns.
The child runs at the lowest priority, so that on a machine whose cores the
nodes share it takes what they leave. Memory: pickling touches every object
of the state, so the child ends up with its own copy of most of those pages
(the leader needs room for about one more copy of the live state while a
snapshot is taken, docs/operations.md).

The child only pickles and writes to its pipe: it never returns into the
caller, the event loop or any library, and leaves with ``os._exit``.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import threading
from typing import Any, NoReturn

from chatserver.live import codec


class Pickled:
    """``value`` pickled as it is now; ``await data()`` for the bytes.

    A thread of its own drains the pipe and reaps the child whatever
    happens to the caller (cancelled, closed), so no child is left blocked
    on a full pipe or unreaped, and the shared thread pool (passphrase
    hashing) never holds a snapshot up. OSError if the fork fails."""

    def __init__(self, value: Any) -> None:
        loop = asyncio.get_running_loop()
        self._done: asyncio.Future[tuple[bytes, int]] = loop.create_future()
        self._pid = -1
        if not hasattr(os, "fork"):  # not POSIX: pickle here, the loop waits
            self._done.set_result((codec.dump_state(value), 0))
            return
        read_fd, write_fd = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_fd)
            os.close(write_fd)
            raise
        if pid == 0:
            _child(value, read_fd, write_fd)
        os.close(write_fd)
        self._pid = pid

        def collect() -> None:
            try:
                result = _collect(pid, read_fd)
            except BaseException:  # (out of memory): a failed snapshot, not a hang
                result = (b"", -1)
            try:
                loop.call_soon_threadsafe(_settle, self._done, result)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass
        try:
            threading.Thread(target=collect, name="live-snapshot", daemon=True).start()
        except RuntimeError as exc:  # no thread to be had: the child must not wait for ever
            os.kill(pid, signal.SIGKILL)
            os.close(read_fd)
            os.waitpid(pid, 0)
            raise OSError(f"no thread to read the snapshot: {exc}") from None

    async def data(self) -> bytes:
        data, code = await asyncio.shield(self._done)
        if code != 0:
            raise codec.CodecError(f"the pickling process failed (exit {code})")
        return data


def _settle(fut: asyncio.Future[tuple[bytes, int]], result: tuple[bytes, int]) -> None:
    if not fut.done():
        fut.set_result(result)


def _child(value: Any, read_fd: int, write_fd: int) -> NoReturn:
    code = 1
    try:
        gc.disable()  # a collection would touch (and so copy) every page
        os.close(read_fd)
        # The parent's loop reads signals from this fd: a signal sent to
        # this child must not reach the parent's handlers through it.
        signal.set_wakeup_fd(-1)
        _yield_to_everyone()
        view = memoryview(codec.dump_state(value))
        while view:
            view = view[os.write(write_fd, view):]
        code = 0
    finally:
        os._exit(code)


def _yield_to_everyone() -> None:
    """The lowest priority short of none: the nodes sharing this machine
    (and this node's own loop) go first, and a snapshot may take longer.
    Not SCHED_IDLE: under a long saturation it would never finish, and the
    log is trimmed only behind a written snapshot."""
    try:
        os.nice(19)
    except OSError:
        pass


def _collect(pid: int, fd: int) -> tuple[bytes, int]:
    chunks: list[bytes] = []
    try:
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    return b"".join(chunks), os.waitstatus_to_exitcode(status)
