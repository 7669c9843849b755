"""Redis misbehaving under several nodes (docs/design/live-state.md):

- one node's Redis connections cut (``CLIENT KILL``), then every client
  paused for 2 s (``CLIENT PAUSE``), while conversations keep sending:
  messages are late, never lost, duplicated or reordered;
- a return passphrase offered just as the youth's node is cut from Redis
  reaches the youth, or the counsellor is told it did not go;
- Redis gone: every node says it is not ready, a youth who tries to start
  gets a clear error code at once (no hang), and when Redis is back on its
  port the service resumes by itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from chatserver.client.reference import CallFailed
from tests.helpers.cluster import Cluster
from tests.helpers.conversation_load import close_talks, finish, more_sent, start_talks
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.redis, pytest.mark.slow]

RECOVERY_SECS = 60.0  # hang guard


async def test_a_node_cut_from_redis_and_redis_paused_delay_but_lose_nothing(
        three_nodes: Cluster) -> None:
    c = three_nodes
    talks = await start_talks(c, [("n1", "n2"), ("n3", "n1")])
    try:
        await more_sent(c, talks, 5)
        assert c.redis.kill_clients(name_contains="chatserver-n1") > 0
        await more_sent(c, talks, 10)  # n1 reconnected to Redis by itself
        c.redis.pause(2000)
        await more_sent(c, talks, 10)
        await finish(c, talks)
        assert all(status == 200 for status in
                   await asyncio.gather(*(c.readyz(n) for n in c.nodes)))
    finally:
        await close_talks(talks)


async def test_redis_gone_fails_readiness_and_starts_then_service_resumes_by_itself(
        three_nodes: Cluster) -> None:
    c = three_nodes
    counsellor, _ = await c.counsellor("n1")

    async def readiness() -> list[int]:
        return list(await asyncio.gather(*(c.readyz(n) for n in c.nodes)))

    c.redis.stop()
    await eventually(lambda: _all(readiness, 503), RECOVERY_SECS, every=0.1)
    youth = await c.youth("n2")
    with pytest.raises(CallFailed) as refused:
        await youth.start()  # within the call's timeout: a hang raises TimeoutError
    assert refused.value.code == "unavailable"
    assert {"hours", "alternatives", "emergency"} <= set(refused.value.info)

    c.redis.start()  # the same port, empty: persistence is off
    await eventually(lambda: _all(readiness, 200), RECOVERY_SECS, every=0.1)
    # The youth tries again and a counsellor who was on duty all along takes it.
    conv = (await youth.start())["conversation"]
    await counsellor.claim(conv)
    await youth.wait_for(lambda: youth.conversations[conv].epoch == 1, 15)
    await youth.send_text(conv, "after the outage")
    assert (await counsellor.next_message(15)).text == "after the outage"
    await counsellor.send_text(conv, "heard you")
    assert (await youth.next_message(15)).text == "heard you"


async def _all(statuses: Callable[[], Awaitable[list[int]]], want: int) -> bool:
    return all(s == want for s in await statuses())


async def test_a_passphrase_offered_while_the_youths_node_is_cut_from_redis_is_not_lost(
        three_nodes: Cluster) -> None:
    # A return passphrase never enters the log: it goes to the youth's node
    # its own way (chatserver/live/). Cut every Redis connection of that node
    # and offer at once: the youth gets the passphrase once the node is back,
    # or the counsellor is told it did not go — never "ok" and nothing.
    c = three_nodes
    youth, counsellor, _, conv = await c.chat(youth_node="n1", counsellor_node="n2")
    assert c.redis.kill_clients(name_contains="chatserver-n1") > 0
    try:
        await counsellor.offer_return(conv)
    except CallFailed as refused:
        assert refused.code == "unavailable"
        return
    await youth.wait_for(lambda: conv in youth.return_codes, 30)
