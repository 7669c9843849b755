"""chatserver/live/sentinel_pool.py against two real redis-servers, with the
Sentinels' answer ("where is the primary?") under the test's control: when
the answer changes, idle connections and busy ones (once released) to the
old address are closed, and the next connection goes to the new one; past
its size the pool waits instead of raising."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from chatserver.live.sentinel_pool import BlockingSentinelPool
from tests.helpers.redis_server import RedisServer, redis_server
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.redis]


class Answer:
    """Stands for redis-py's Sentinel manager: the primary is where it says."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server

    async def discover_master(self, service: str) -> tuple[str, int]:
        assert service == "chat"
        return "127.0.0.1", self.server.port


def _pool(answer: Answer, server: RedisServer, size: int) -> BlockingSentinelPool:
    return BlockingSentinelPool("chat", answer, max_connections=size, timeout=5,
                                username="chatserver", password=server.password)


def _run_id(info: dict[str, object]) -> object:
    return info["run_id"]


def _ours(server: RedisServer) -> int:
    """Connections of the chatserver user open on ``server``."""
    return sum(1 for c in server.clients() if c.get("user") == "chatserver")


async def test_connections_follow_the_primary_the_sentinels_name() -> None:
    with redis_server() as first, redis_server(password=first.password) as second:
        answer = Answer(first)
        pool = _pool(answer, first, 4)
        client = aioredis.Redis.from_pool(pool)
        try:
            first_id = _run_id(await client.info("server"))
            busy = await pool.get_connection()
            idle = await pool.get_connection()
            await pool.release(idle)
            assert busy.is_connected and idle.is_connected

            answer.server = second  # a failover
            pool._checked_at = 0.0  # the next take asks again (at most once a second)
            second_id = _run_id(await client.info("server"))
            assert second_id != first_id
            # The idle one was closed when the answer changed; the busy one
            # is left alone until it is given back, and closed then.
            await eventually(lambda: _ours(first) == 1, 30)  # a hang guard
            await pool.release(busy)
            await eventually(lambda: _ours(first) == 0, 30)
            for _ in range(8):
                assert _run_id(await client.info("server")) == second_id
            assert _ours(first) == 0
        finally:
            await client.aclose()


async def test_past_its_size_the_pool_waits_for_a_free_connection() -> None:
    with redis_server() as server:
        pool = _pool(Answer(server), server, 1)
        client = aioredis.Redis.from_pool(pool)
        try:
            held = await pool.get_connection()
            waiting = asyncio.ensure_future(client.ping())
            await asyncio.sleep(0.2)  # a chance to fail at once, as a default pool would
            assert not waiting.done()
            await pool.release(held)
            assert await asyncio.wait_for(waiting, 30)  # a hang guard
        finally:
            await client.aclose()
