"""A counsellor's console that lost its keys takes its seats back (re-attach),
over real sockets (docs/protocol.md, "seats" and "reattach";
docs/design/conversations.md, "Re-attach after a reload").

A reload is modelled as what it is for the page: the console's client, its
keys and its resume secrets are gone; a new client with the same staff
session connects, learns its seats and re-attaches each under a new key. The
youth sees the counsellor's page gone (presence) and back (a roster that says
so), learns which of its messages were dropped unopened and sends them again
under the new epoch; the chat goes on end to end both ways. A liaison is told
the same way and sends again what it had written meanwhile.
"""

from __future__ import annotations

import json

import pytest

from chatserver.client.reference import CallFailed, ReferenceClient
from chatserver.crypto import e2e
from chatserver.crypto.tokens import b64e
from tests.conftest import LiveServer, MakeServer
from tests.helpers.cluster import Cluster, node_of
from tests.helpers.waiting import eventually
from tests.integration.test_invites import _next_of
from tests.integration.test_invites import _seat as seat_liaison


async def _console(server: LiveServer, cookie: str) -> ReferenceClient:
    client = ReferenceClient()
    await client.connect(server.url, "/staff", headers={"Cookie": cookie})
    server.clients.append(client)
    return client


def _held(server: LiveServer, conv: str) -> tuple[int, str, bytes]:
    """(epoch, the counsellor seat's key, its resume hash) as the server holds them."""
    c = server.ctx.chat.conversations[conv]
    seat = c.counsellors()[0]
    return c.epoch, seat.kx_pk, seat.resume_hash


async def test_a_reloaded_console_takes_its_seat_back(make_server: MakeServer) -> None:
    server = await make_server(presence_grace_secs=1, grace_secs=60)
    creds = await server.add_staff(alias="Mira")
    login = await server.login(creds)
    console = await _console(server, login.cookie)
    assert console.seats == []  # told on connect, even when there is nothing
    await console.duty(True)
    youth = await server.youth()
    conv = (await youth.start())["conversation"]
    await console.claim(conv)
    await youth.wait_for(lambda: youth.conversations[conv].epoch == 1, 5)
    member = console.conversations[conv].member
    await youth.send_text(conv, "before the reload")
    assert (await console.next_message(5)).text == "before the reload"
    await console.send_text(conv, "hello from Mira")
    assert (await youth.next_message(5)).text == "hello from Mira"
    seat = server.ctx.chat.conversations[conv].members[member]
    await eventually(lambda: seat.inbox_count == 0)  # the console acknowledged it

    # The reload: the page, its keys and its resume secrets are gone.
    await console.disconnect()
    await eventually(lambda: youth.presence.get(conv, {}).get("online") is False)
    assert youth.presence[conv]["member"] == member
    await youth.send_text(conv, "are you there")
    await youth.send_text(conv, "hello?")

    back = await _console(server, login.cookie)
    assert back.seats == [{"conversation": conv, "state": "active",
                           "pseudonym": server.ctx.chat.conversations[conv].pseudonym}]
    seat_reply = await back.reattach(conv)
    assert seat_reply["member"] == member and seat_reply["epoch"] == 2
    assert seat_reply["seq"] == 1 and seat_reply["youth_online"] is True
    assert set(seat_reply) >= {"resume", "members", "state", "pseudonym"}

    # The youth's page: the new roster, who came back, what was dropped.
    await youth.wait_for(lambda: youth.reattached.get(conv) == member, 5)
    assert youth.conversations[conv].epoch == 2
    assert youth.conversations[conv].undelivered == (2, 3)
    await eventually(lambda: youth.presence[conv].get("online") is True)
    assert await youth.resend_undelivered(conv) == [4, 5]
    got = [(await back.next_message(5)).text for _ in range(2)]
    assert got == ["are you there", "hello?"]

    # On it goes, end to end both ways; the console's seq numbering goes on.
    assert await back.send_text(conv, "I am back") == 2
    received = await youth.next_message(5)
    assert received.text == "I am back" and received.epoch == 2
    await youth.send_text(conv, "good")
    assert (await back.next_message(5)).text == "good"
    assert youth.gaps == [] and back.gaps == []
    assert youth.undecryptable == 0 and back.undecryptable == 0

    entries = [e async for e in server.ctx.store.iter_audit()]
    done = [e for e in entries if e.action == "reattached"]
    assert len(done) == 1 and done[0].actor == creds.username
    assert json.loads(done[0].detail) == {"count": 2}
    assert not any("hello" in repr(e) or "are you there" in repr(e) for e in entries)


async def test_a_second_console_takes_the_seat_from_the_first(
        live_server: LiveServer) -> None:
    creds = await live_server.add_staff()
    login = await live_server.login(creds)
    first = await _console(live_server, login.cookie)
    await first.duty(True)
    youth = await live_server.youth()
    conv = (await youth.start())["conversation"]
    await first.claim(conv)
    second = await _console(live_server, login.cookie)
    assert [s["conversation"] for s in second.seats or ()] == [conv]
    await second.reattach(conv)
    # The first console's keys no longer match the roster: its view is over,
    # and its resume secret is no longer the seat's.
    await first.wait_for(lambda: first.conversations[conv].state == "ended", 5)
    assert first.conversations[conv].ended_reason == "reattached"
    await youth.send_text(conv, "to the new console")
    assert (await second.next_message(5)).text == "to the new console"


async def test_refusals_change_nothing(live_server: LiveServer) -> None:
    youth, counsellor, conv = await live_server.chat()
    before = _held(live_server, conv)
    other = await live_server.staff_client()  # another counsellor account
    operator = await live_server.staff_client(await live_server.add_staff(role="operator"),
                                              duty=False)
    fresh = b64e(e2e.KxKeyPair.generate().public_key)
    youth_pk = b64e(youth.conversations[conv].keys.public_key)

    async def refused(client: ReferenceClient, payload: dict[str, str]) -> str:
        with pytest.raises(CallFailed) as exc:
            await client.call("reattach", payload)
        assert _held(live_server, conv) == before
        return exc.value.code

    assert await refused(other, {"conversation": conv, "kx_pk": fresh}) == "not_member"
    assert await refused(operator, {"conversation": conv, "kx_pk": fresh}) == "not_allowed"
    assert await refused(counsellor, {"conversation": "0" * 32, "kx_pk": fresh}) == \
        "unknown_conversation"
    # The same key as another member (or its own old one): not a new key.
    assert await refused(counsellor, {"conversation": conv, "kx_pk": youth_pk}) == \
        "bad_payload"
    assert await refused(counsellor, {"conversation": conv, "kx_pk": before[1]}) == \
        "bad_payload"
    assert await refused(counsellor, {"conversation": conv, "kx_pk": "short"}) == \
        "bad_payload"
    assert await refused(counsellor, {"conversation": conv}) == "bad_payload"
    assert await refused(counsellor, {"conversation": conv, "kx_pk": fresh,
                                      "resume": "x"}) == "bad_payload"
    assert await refused(counsellor, {"conversation": conv.upper(), "kx_pk": fresh}) == \
        "bad_payload"
    # The seat still works as before, with its old keys.
    await counsellor.send_text(conv, "still mine")
    assert (await youth.next_message(5)).text == "still mine"
    entries = [e async for e in live_server.ctx.store.iter_audit()]
    assert not any(e.action == "reattached" for e in entries)


async def test_a_liaison_is_told_and_sends_again_what_was_dropped(
        live_server: LiveServer) -> None:
    creds = await live_server.add_staff(alias="Mira")
    login = await live_server.login(creds)
    console = await _console(live_server, login.cookie)
    await console.duty(True)
    youth = await live_server.youth()
    conv = (await youth.start())["conversation"]
    await console.claim(conv)
    liaison = await live_server.liaison()
    await seat_liaison(youth, console, liaison, conv)
    member = console.conversations[conv].member

    await console.disconnect()
    await liaison.send_text(conv, "from the liaison")
    assert (await _next_of(youth, "msg")).text == "from the liaison"
    back = await _console(live_server, login.cookie)
    await back.reattach(conv)
    await liaison.wait_for(lambda: liaison.reattached.get(conv) == member, 5)
    assert liaison.conversations[conv].undelivered == (1, 1)
    assert youth.conversations[conv].undelivered is None  # nothing of the youth's was waiting
    assert await liaison.resend_undelivered(conv) == [2]
    assert (await _next_of(back, "msg")).text == "from the liaison"
    await back.send_text(conv, "to both of you")
    assert (await _next_of(youth, "msg")).text == "from the liaison"  # the copy, once more
    assert (await _next_of(youth, "msg")).text == "to both of you"
    assert (await _next_of(liaison, "msg")).text == "to both of you"
    assert youth.undecryptable == liaison.undecryptable == back.undecryptable == 0


@pytest.mark.redis
async def test_a_console_reopened_on_another_node_takes_its_seat_back(
        three_nodes: Cluster) -> None:
    """Several nodes on one Redis (docs/design/live-state.md): the console's
    new page lands on another node, which has the same seat in its replica."""
    c = three_nodes
    youth, console, login, conv = await c.chat(youth_node="n1", counsellor_node="n2")
    member = console.conversations[conv].member
    await console.disconnect()
    await youth.send_text(conv, "while the console was gone")

    back = ReferenceClient()
    back.call_timeout = console.call_timeout
    c.clients.append(back)
    c.proxy.pin_next("n3")
    await back.connect(c.url, "/staff", headers={"Cookie": login.cookie})
    assert node_of(back) == "n3"
    await back.wait_for(lambda: back.seats is not None, 15)
    assert [s["conversation"] for s in back.seats or ()] == [conv]
    await back.reattach(conv)
    await youth.wait_for(lambda: youth.reattached.get(conv) == member, 15)
    assert await youth.resend_undelivered(conv) == [2]
    assert (await back.next_message(15)).text == "while the console was gone"
    await back.send_text(conv, "back, from another node")
    assert (await youth.next_message(15)).text == "back, from another node"
    assert youth.undecryptable == back.undecryptable == 0
