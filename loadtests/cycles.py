"""Cyclic garbage per closed connection (docs/decisions/0007).

    python -m loadtests.cycles [--n 50] [--engineio-returns-none]

Starts chatserver in this process (the test configuration, collector as
shipped), connects ``n`` python-socketio clients to ``/youth`` over
WebSocket, disconnects them, and collects with ``gc.DEBUG_SAVEALL`` so the
unreachable objects are kept and counted by type, and (tracemalloc) how
many bytes they held. Under the freeze GC
policies this garbage is frozen with the live heap and waits for the
periodic full collection.

``--engineio-returns-none`` replaces python-engineio's aiohttp
``WebSocket.wait`` in *this measurement process only* with a version that
returns ``None`` at the end of the stream instead of raising ``OSError`` —
the upstream change decision 0007 proposes — to show what it would save.
chatserver itself never patches the library. Server and clients share the
process, so the clients' own garbage is in the count too (at most what is
left with the change).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

import socketio
from aiohttp import web

from chatserver.app import create_app
from chatserver.settings import REPO_ROOT, load_settings

TEST_CONFIG = REPO_ROOT / "config" / "test.toml"


def cyclic_garbage() -> tuple[int, collections.Counter[str], int]:
    """Collect everything unfrozen once with ``gc.DEBUG_SAVEALL``, so the
    unreachable objects are kept in ``gc.garbage`` instead of freed: (how many,
    how many by type, bytes they held per tracemalloc — 0 unless it is
    tracing), then free them for good."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        by_type = collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}"
                                      for o in gc.garbage)
        total = len(gc.garbage)
    finally:
        gc.set_debug(0)
        held = tracemalloc.get_traced_memory()[0]
        gc.garbage.clear()
        gc.collect()  # now freed, with everything the cycles held
        held -= tracemalloc.get_traced_memory()[0]
    return total, by_type, held


def _engineio_returns_none() -> None:
    from engineio.async_drivers import aiohttp as driver

    async def wait(self: Any) -> Any:
        msg = await self._sock.receive()
        if not isinstance(msg.data, (bytes, str)):
            return None  # engine.io's read loop takes None as "closed by the client"
        return msg.data

    driver.WebSocket.wait = wait


async def measure(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data:
        return await _measure(n, Path(data) / "var")


async def _measure(n: int, data_dir: Path) -> dict[str, Any]:
    settings = load_settings(config_file=TEST_CONFIG, env={"CHAT_DATA_DIR": str(data_dir)})
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        clients = []
        for _ in range(n):
            client = socketio.AsyncClient()
            await client.connect(f"http://127.0.0.1:{port}", namespaces=["/youth"],
                                 transports=["websocket"],
                                 headers={"Origin": settings.public_origin})
            clients.append(client)
        await asyncio.sleep(0.5)
        gc.collect()  # what connecting left behind is not counted
        for client in clients:
            await client.disconnect()
        await asyncio.sleep(1.0)
        total, by_type, held = cyclic_garbage()
    finally:
        await runner.cleanup()
    return {"closed_connections": n, "garbage_objects": total,
            "per_closed_connection": round(total / n, 1),
            "bytes_per_closed_connection": round(held / n),
            "by_type": dict(by_type.most_common(25))}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.cycles", description=__doc__)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--engineio-returns-none", action="store_true")
    args = parser.parse_args()
    if args.engineio_returns_none:
        _engineio_returns_none()
    tracemalloc.start()
    result = asyncio.run(measure(args.n))
    result["engineio_returns_none"] = args.engineio_returns_none
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
