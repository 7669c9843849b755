"""A snapshot is pickled by a forked child: the loop goes on meanwhile, the
bytes are the state as it was when it was taken, and a failure is an error,
not a hang or a stray process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chatserver.live import codec
from chatserver.live.aside import Pickled
from tests.helpers.waiting import eventually


async def test_the_state_as_taken_while_the_loop_goes_on() -> None:
    state = {"conversations": {f"c{n}": ("x" * 20, n) for n in range(200_000)}}
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)
    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    taken = Pickled(state)
    before = ticks
    state["conversations"]["c0"] = ("changed after", -1)  # the child's copy is untouched
    state["late"] = True
    data = await taken.data()
    task.cancel()
    assert ticks > before  # the loop ran other work while the child pickled
    back = codec.load_state(data)
    assert back["conversations"]["c0"] == ("x" * 20, 0) and "late" not in back
    assert len(back["conversations"]) == 200_000
    assert await taken.data() is data  # read once


async def test_a_child_that_cannot_pickle_is_an_error_and_leaves_no_process() -> None:
    taken = Pickled({"not state": lambda: None})
    with pytest.raises(codec.CodecError, match="failed"):
        await taken.data()
    assert _reaped(taken._pid)  # no process left behind


def _reaped(pid: int) -> bool:
    # Not waitpid: that would race the collector's own (a zombie keeps its
    # /proc entry until it is reaped).
    return not Path(f"/proc/{pid}").exists()


async def test_a_snapshot_nobody_reads_leaves_no_process_behind() -> None:
    # Larger than a pipe holds: the child would block on its write for ever
    # if only the caller's data() drained it (a close cancels that caller).
    taken = Pickled({"big": ["x" * 100 for _ in range(20_000)]})
    await eventually(lambda: _reaped(taken._pid))
