"""What ``redis_wait_replica_ms`` costs a live-state append: XADD of a
command-sized entry alone, and XADD followed by ``WAIT 1 500`` on the same
connection (as chatserver/live/replicated.py sends them), against a private
primary and replica from deploy/redis/ on this machine. Alternating rounds,
so that the machine's other load falls on both alike; the median round is
reported. On a network, add one round trip between primary and replica to
every WAIT.

    python -m loadtests.redis_wait_bench   -> JSON on stdout
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import redis.asyncio as aioredis

from tests.helpers.redis_server import redis_server

# A "send" command as the log holds it: the sealed box dominates.
ENTRY: dict[Any, Any] = {"c": "x" * 600, "h": "0" * 64}
CONCURRENCY = (1, 16, 64)  # callers appending at once (one node's busy second)
APPENDS = 2_000  # per round
ROUNDS = 5
WAIT_MS = 500


async def _round(port: int, password: str, wait: bool, callers: int) -> dict[str, float]:
    client = aioredis.Redis(port=port, username="chatserver", password=password,
                            max_connections=callers)
    took: list[float] = []
    unconfirmed = 0

    async def caller() -> None:
        nonlocal unconfirmed
        for _ in range(APPENDS // callers):
            started = time.perf_counter()
            if wait:
                pipe = client.pipeline(transaction=False)
                pipe.xadd("chat:bench", ENTRY)
                pipe.wait(1, WAIT_MS)
                _, replicas = await pipe.execute()
                unconfirmed += replicas != 1
            else:
                await client.xadd("chat:bench", ENTRY)
            took.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    elapsed = time.perf_counter() - started
    await client.delete("chat:bench")
    await client.aclose()
    took.sort()
    return {"per_sec": len(took) / elapsed, "p50_ms": took[len(took) // 2] * 1000,
            "p99_ms": took[int(len(took) * 0.99)] * 1000, "unconfirmed": unconfirmed}


def main() -> None:
    results: dict[str, dict[str, float]] = {}
    with redis_server(use_deploy_conf=True) as primary, \
            redis_server(replica_of=primary, use_deploy_conf=True):
        for callers in CONCURRENCY:
            rounds: dict[bool, list[dict[str, float]]] = {False: [], True: []}
            for _ in range(ROUNDS):
                for wait in (False, True):
                    rounds[wait].append(asyncio.run(
                        _round(primary.port, primary.password, wait, callers)))
            for wait, found in rounds.items():
                results[f"{callers} callers, {'XADD+WAIT' if wait else 'XADD'}"] = {
                    key: round(statistics.median(r[key] for r in found), 2)
                    for key in ("per_sec", "p50_ms", "p99_ms")} | {
                    "unconfirmed": sum(r["unconfirmed"] for r in found)}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
