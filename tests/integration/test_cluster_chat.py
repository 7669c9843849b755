"""Several nodes on one Redis (docs/design/live-state.md): a youth and a
counsellor on different nodes chat both ways, and every claim is decided
once for the whole deployment — twenty counsellors on three nodes claim one
youth, exactly one wins; one return passphrase redeemed on two nodes at
once, exactly one redemption wins; a long-polling session's requests all
reach the node that made it."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
import socketio

from chatserver.client.reference import CallFailed
from tests.helpers.cluster import Cluster, node_of

pytestmark = [pytest.mark.redis]


async def test_youth_and_counsellor_on_different_nodes_chat_both_ways(
        three_nodes: Cluster) -> None:
    c = three_nodes
    youth, counsellor, _, conv = await c.chat(youth_node="n1", counsellor_node="n2")
    assert (node_of(youth), node_of(counsellor)) == ("n1", "n2")
    for n in range(5):
        await youth.send_text(conv, f"from the youth {n}")
        await counsellor.send_text(conv, f"from the counsellor {n}")
    got_c = [(await counsellor.next_message(15)).text for _ in range(5)]
    got_y = [(await youth.next_message(15)).text for _ in range(5)]
    assert got_c == [f"from the youth {n}" for n in range(5)]
    assert got_y == [f"from the counsellor {n}" for n in range(5)]
    assert youth.gaps == counsellor.gaps == []
    assert youth.undecryptable == counsellor.undecryptable == 0




async def test_twenty_counsellors_on_three_nodes_claim_one_youth_exactly_one_wins(
        three_nodes: Cluster) -> None:
    c = three_nodes
    nodes = list(c.nodes)
    counsellors = []
    for i, creds in enumerate(await c.add_staff(20)):
        client, _ = await c.counsellor(nodes[i % 3], creds=creds)
        counsellors.append(client)
    assert {node_of(x) for x in counsellors} == set(nodes)
    youth = await c.youth("n2")
    conv = (await youth.start())["conversation"]
    # Every console has seen the youth in its queue: the claims race for real.
    for x in counsellors:
        await x.wait_for(lambda x=x: conv in str(x.queue), 15)
    results = await asyncio.gather(*(x.claim(conv) for x in counsellors),
                                   return_exceptions=True)
    won = [x for x, r in zip(counsellors, results, strict=True) if isinstance(r, dict)]
    refused = [r for r in results if not isinstance(r, dict)]
    assert len(won) == 1, results
    assert all(isinstance(r, CallFailed) and r.code == "already_claimed" for r in refused), \
        [repr(r) for r in refused]
    # The youth's roster names the winner and nobody else.
    await youth.wait_for(lambda: youth.conversations[conv].epoch == 1, 15)
    roster = youth.conversations[conv].roster.members
    assert [m.member for m in roster.values() if m.role == "counsellor"] == \
        [won[0].conversations[conv].member]
    await won[0].send_text(conv, "hello from the one who won")
    assert (await youth.next_message(15)).text == "hello from the one who won"


async def test_one_return_passphrase_redeemed_on_two_nodes_at_once_exactly_one_wins(
        three_nodes: Cluster) -> None:
    c = three_nodes
    youth, counsellor, _, conv = await c.chat(youth_node="n1", counsellor_node="n2")
    await counsellor.offer_return(conv)
    await youth.wait_for(lambda: conv in youth.return_codes, 15)
    words = str(youth.return_codes[conv]["passphrase"])
    await counsellor.end(conv)
    first, second = await c.youth("n1"), await c.youth("n3")
    results = await asyncio.gather(first.start(passphrase=words), second.start(passphrase=words),
                                   return_exceptions=True)
    won = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if not isinstance(r, dict)]
    assert len(won) == 1 and won[0].get("returning") in ("queued", "choose"), results
    assert len(refused) == 1 and isinstance(refused[0], CallFailed), results
    assert refused[0].code == "bad_passphrase"


async def test_a_long_polling_session_is_routed_to_its_node_by_its_sid(
        three_nodes: Cluster) -> None:
    # The fallback of a browser whose WebSocket is blocked: every request
    # after the handshake carries ?sid=<node>.<random> and must reach the
    # node that made the session (docs/operations.md, "The load balancer").
    c = three_nodes
    async with aiohttp.ClientSession() as http:
        sio = socketio.AsyncClient(reconnection=False, http_session=http,
                                   handle_sigint=False)
        await sio.connect(c.url, headers={"Origin": c.url}, transports=["polling"],
                          namespaces=["/youth"], wait_timeout=15)
        try:
            node = str(sio.get_sid("/youth")).split(".", 1)[0]
            assert node in c.nodes
            for _ in range(5):  # each a request (or two) of its own
                reply = await sio.call("status", {}, namespace="/youth", timeout=15)
                assert reply["ok"] is True
        finally:
            # Not waiting for the long-poll in flight to come back (up to a
            # ping interval): the routing is what this test is about.
            await sio.eio.disconnect(abort=True)
    by_sid = [r for r in c.proxy.routed if r.by_sid]
    assert len(by_sid) >= 5
    assert {r.node for r in by_sid} == {node}
