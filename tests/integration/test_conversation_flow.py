"""Real server, real sockets, real crypto: the core flows of a conversation
(docs/design/conversations.md): start, queue, claim, relay, resume, pause, end."""

from __future__ import annotations

import asyncio
import base64

import pytest

from chatserver.client.reference import CallFailed
from chatserver.domain.relay import BoxIn
from tests.conftest import LiveServer


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def test_full_conversation_both_directions_server_sees_only_ciphertext(
        live_server: LiveServer) -> None:
    # Given a counsellor on duty and a youth in the queue
    seen: list[BoxIn] = []
    real_send = live_server.ctx.chat.send

    def spy(conn, conv, epoch, seq, boxes):  # type: ignore[no-untyped-def]
        seen.extend(boxes)  # what the relay is handed, after validation
        return real_send(conn, conv, epoch, seq, boxes)

    live_server.ctx.chat.send = spy  # type: ignore[method-assign]
    counsellor = await live_server.staff_client()
    youth = await live_server.youth()
    started = await youth.start({"language": "sv", "age_band": "16-17"})
    conv = started["conversation"]
    assert started["position"] == 1

    # When the counsellor claims and both write
    await counsellor.claim(conv)
    await youth.wait_for(lambda: youth.conversations[conv].epoch == 1, 5)
    canary_y, canary_c = "CANARY-youth-7f3a9", "CANARY-counsellor-c41d"
    await youth.send_text(conv, f"hej {canary_y}")
    got = await counsellor.next_message(5)
    await counsellor.send_text(conv, f"svar {canary_c}")
    back = await youth.next_message(5)

    # Then both directions decrypt, and the relay saw only ciphertext
    assert got.text == f"hej {canary_y}" and back.text == f"svar {canary_c}"
    assert len(seen) == 2
    for box in seen:
        raw = _unb64(box.ct)
        assert (len(raw) - 16) % 256 == 0
        for canary in (canary_y, canary_c):
            assert canary.encode() not in raw and canary not in box.ct

    # And ending is seen by both, with the reason
    await counsellor.end(conv)
    await youth.wait_for(lambda: youth.conversations[conv].state == "ended", 5)
    assert youth.conversations[conv].ended_reason == "done"
    assert conv not in live_server.ctx.chat.conversations


async def test_twenty_counsellors_claim_one_conversation(live_server: LiveServer) -> None:
    counsellors = [await live_server.staff_client() for _ in range(20)]
    youth = await live_server.youth()
    conv = (await youth.start())["conversation"]

    results = await asyncio.gather(*(c.claim(conv) for c in counsellors),
                                   return_exceptions=True)

    winners = [r for r in results if isinstance(r, dict)]
    losers = [r for r in results if isinstance(r, CallFailed)]
    assert len(winners) == 1 and len(losers) == 19
    assert {e.code for e in losers} == {"already_claimed"}


async def test_capacity_and_duty_are_enforced(live_server: LiveServer) -> None:
    one = await live_server.staff_client(capacity=1)
    off = await live_server.staff_client(duty=False)
    y1, y2 = await live_server.youth(), await live_server.youth()
    c1 = (await y1.start())["conversation"]
    c2 = (await y2.start())["conversation"]
    await one.claim(c1)
    with pytest.raises(CallFailed) as full:
        await one.claim(c2)
    with pytest.raises(CallFailed) as offduty:
        await off.claim(c2)
    assert (full.value.code, offduty.value.code) == ("at_capacity", "not_on_duty")
    assert live_server.ctx.chat.queue.position(c2) == 1  # nothing changed


async def test_queue_position_and_eta_reach_the_youth(live_server: LiveServer) -> None:
    counsellor = await live_server.staff_client()
    youths = [await live_server.youth() for _ in range(3)]
    convs = [(await y.start())["conversation"] for y in youths]
    mine = youths[2].conversations[convs[2]]
    assert mine.position == 3 and mine.eta_secs
    eta_before = mine.eta_secs

    await counsellor.claim(convs[0])  # someone ahead is claimed
    await youths[2].wait_for(lambda: mine.position == 2, 5)
    await youths[1].leave("done")  # someone ahead leaves
    await youths[2].wait_for(lambda: mine.position == 1, 5)
    assert mine.eta_secs is not None and mine.eta_secs < eta_before


async def test_nobody_on_duty_answers_at_once_and_keeps_nothing(live_server: LiveServer) -> None:
    youth = await live_server.youth()
    status = await youth.status()
    assert status["open"] is False and status["alternatives"]
    with pytest.raises(CallFailed) as closed:
        await youth.start({"gender": "girl"})
    assert closed.value.code == "nobody_on_duty"
    assert closed.value.info and closed.value.info["hours"]["sv"]
    # Nothing kept; only the unmet start is counted (its band, no profile).
    assert not live_server.ctx.chat.conversations and live_server.ctx.stats.pending() == 1


async def test_resume_after_drop_delivers_ten_in_order_once(live_server: LiveServer) -> None:
    youth, counsellor, conv = await live_server.chat()

    await youth.disconnect()  # the youth's transport drops
    for i in range(10):
        await counsellor.send_text(conv, f"message {i}")
    await youth.connect(live_server.url, "/youth")
    await youth.resume(conv)

    got = [await youth.next_message(5) for _ in range(10)]
    assert [m.text for m in got] == [f"message {i}" for i in range(10)]
    assert [m.seq for m in got] == list(range(1, 11))
    await asyncio.sleep(0.3)
    assert youth.inbox.empty() and youth.replays == 0  # none twice


async def test_grace_expiry_ends_conversation_and_drops_buffer(live_server: LiveServer) -> None:
    youth, counsellor, conv = await live_server.chat()
    await youth.disconnect()
    await counsellor.send_text(conv, "are you there?")
    member = live_server.ctx.chat.conversations[conv].youth()
    assert member is not None and member.inbox_count == 1

    await counsellor.wait_for(lambda: counsellor.conversations[conv].state == "ended",
                              live_server.settings.grace_secs + 3)

    assert counsellor.conversations[conv].ended_reason == "timed_out"
    assert conv not in live_server.ctx.chat.conversations
    assert member.inbox_count == 0 and not any(member.inbox.values())
    await youth.connect(live_server.url, "/youth")
    with pytest.raises(CallFailed) as late:
        await youth.resume(conv)
    assert late.value.code == "unknown_conversation"


async def test_typing_reaches_the_other_side(live_server: LiveServer) -> None:
    youth, counsellor, conv = await live_server.chat()
    await youth.send_typing(conv, True)
    await counsellor.wait_for(lambda: any(counsellor.conversations[conv].typing.values()), 5)


async def test_pause_decoy_keeps_place_and_counsellor_sees_it(live_server: LiveServer) -> None:
    youth, counsellor, conv = await live_server.chat()
    await youth.pause(True)
    await counsellor.wait_for(lambda: counsellor.conversations[conv].state == "paused", 5)
    with pytest.raises(CallFailed) as blocked:
        await youth.send_text(conv, "should not go")
    assert blocked.value.code == "wrong_state"
    await youth.pause(False)
    await counsellor.wait_for(lambda: counsellor.conversations[conv].state == "active", 5)


async def test_panic_exit_is_reported_to_counsellor(live_server: LiveServer) -> None:
    counsellor = await live_server.staff_client()
    youth = await live_server.youth()
    conv = (await youth.start())["conversation"]
    await counsellor.claim(conv)
    await youth.leave("panic")
    await counsellor.wait_for(lambda: counsellor.conversations[conv].state == "ended", 5)
    assert counsellor.conversations[conv].ended_reason == "panic_exit"


async def test_closed_page_is_reported_as_page_closed(live_server: LiveServer) -> None:
    counsellor = await live_server.staff_client()
    youth = await live_server.youth()
    conv = (await youth.start())["conversation"]
    await counsellor.claim(conv)
    await youth.leave("closed")
    await counsellor.wait_for(lambda: counsellor.conversations[conv].state == "ended", 5)
    assert counsellor.conversations[conv].ended_reason == "page_closed"


