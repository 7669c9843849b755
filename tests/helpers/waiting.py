"""Wait for a condition instead of sleeping for a guessed time.

A test that sleeps and then asserts fails on a loaded machine (late) or
proves nothing on a fast one (early). ``eventually`` polls until the
condition holds; its deadline only bounds a hang, it is not what the test
asserts, so it is generous.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(check: Callable[[], Any | Awaitable[Any]], secs: float = 5.0,
                     every: float = 0.02) -> Any:
    """Poll ``check`` (a plain or an async predicate) until it returns
    something truthy, and return that. Raise ``AssertionError`` once ``secs``
    have passed without it; the check always runs once more at the deadline."""
    deadline = time.monotonic() + secs
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {secs} s")
        await asyncio.sleep(every)
