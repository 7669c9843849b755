"""A node of several may die or be restarted at any moment and no message is
lost, duplicated or reordered (docs/design/live-state.md): the clients it
held reconnect through the load balancer to another node and ``resume``;
what was sent to them meanwhile waits in the replicated state.

- kill -9 of the node holding the youth mid-conversation, both sides
  sending; then, after that node came back, of the node holding the
  counsellor;
- a rolling restart (SIGINT, start, ready) of every node in turn while three
  conversations keep sending.
"""

from __future__ import annotations

import pytest

from tests.helpers.cluster import Cluster, node_of
from tests.helpers.conversation_load import (
    Talk,
    close_talks,
    finish,
    more_sent,
    start_talks,
    until,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow]


async def test_kill_9_of_the_youths_node_then_the_counsellors_loses_nothing(
        three_nodes: Cluster) -> None:
    c = three_nodes
    youth, counsellor, login, conv = await c.chat(youth_node="n1", counsellor_node="n2")
    talk = Talk(c.url, conv, youth, counsellor, {"Cookie": login.cookie})
    talk.start()
    try:
        await more_sent(c, [talk], 10)
        await c.kill("n1")  # the youth's node, mid-conversation
        c.proxy.pin_next("n3")  # the youth's page comes back on n3
        await until(c, [talk], lambda: talk.youth.reconnects >= 1)
        await more_sent(c, [talk], 10)
        assert node_of(youth) != "n1" and node_of(counsellor) == "n2"
        await c.start("n1")  # back: from the snapshot and the log
        await c.kill("n2")  # now the counsellor's node
        c.proxy.pin_next("n1")  # the console comes back on the node that came back
        await until(c, [talk], lambda: talk.counsellor.reconnects >= 1)
        await more_sent(c, [talk], 10)
        assert node_of(counsellor) != "n2"
        await finish(c, [talk])
        # The conversation is whole: still active at epoch 1 on both sides.
        for client in (youth, counsellor):
            assert client.conversations[conv].state == "active"
            assert client.conversations[conv].epoch == 1
    finally:
        await talk.close()


async def test_a_rolling_restart_of_every_node_under_load_loses_nothing(
        three_nodes: Cluster) -> None:
    c = three_nodes
    talks = await start_talks(c, [("n1", "n2"), ("n2", "n3"), ("n3", "n1")])
    try:
        await more_sent(c, talks, 5)
        for node in ("n1", "n2", "n3"):
            await c.restart(node)
            await more_sent(c, talks, 5)
        await finish(c, talks)
        assert all(side.reconnects >= 1 for t in talks for side in t.sides)
    finally:
        await close_talks(talks)
