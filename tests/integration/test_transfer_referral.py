"""Warm transfer, referrals and reason tags over real sockets
(docs/design/invites.md "Warm transfer", "Referrals"): accept hands the youth
to the colleague without ever dropping them; decline and an unanswered offer
change nothing; a referral is recorded in audit and statistics as codes only,
and its card travels end to end; reason tags are counted when the chat ends.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from chatserver.client.reference import CallFailed, ReferenceClient
from chatserver.domain.stats import month_of
from tests.conftest import LiveServer, MakeServer
from tests.helpers.emits import spy_emits


async def _two_counsellors_and_a_chat(server: LiveServer) -> tuple[
        ReferenceClient, ReferenceClient, ReferenceClient, str, int]:
    """Counsellor 1 (alias Sana) in a chat with a youth; colleague 2 (Omid) on duty.
    Returns (youth, first, second, conversation, second's staff id)."""
    first = await server.staff_client(await server.add_staff(alias="Sana"))
    second = await server.staff_client(await server.add_staff(alias="Omid"))
    youth = await server.youth()
    conv = (await youth.start({"language": "ar", "age_band": "16-17",
                               "topic": "forced_marriage"}))["conversation"]
    await first.claim(conv)
    await youth.wait_for(lambda: youth.conversations[conv].epoch == 1, 5)
    colleagues = await first.colleagues()
    assert [(c["alias"], c["load"]) for c in colleagues] == [("Omid", 0)]
    return youth, first, second, conv, int(colleagues[0]["staff"])


async def _exchange(youth: ReferenceClient, counsellor: ReferenceClient, conv: str,
                    tag: str) -> None:
    await youth.send_text(conv, f"{tag}-youth")
    assert (await counsellor.next_message(5)).text == f"{tag}-youth"
    await counsellor.send_text(conv, f"{tag}-counsellor")
    assert (await youth.next_message(5)).text == f"{tag}-counsellor"


def _roster_of(client: ReferenceClient, conv: str) -> tuple[int, dict[str, bytes]]:
    view = client.conversations[conv].roster
    return view.epoch, {m.member: m.kx_pk for m in view.members.values()}


async def _audit(server: LiveServer) -> list[Any]:
    return [e async for e in server.ctx.store.iter_audit()]


async def _counts(server: LiveServer) -> dict[tuple[str, str], int]:
    await server.ctx.stats.flush(server.ctx.store)
    return await server.ctx.store.get_counts(month_of(server.ctx.clock.now()))


# ---------------------------------------------------------------- transfer


async def test_transfer_accepted_youth_is_never_dropped(live_server: LiveServer) -> None:
    emitted = spy_emits(live_server)
    youth, first, second, conv, second_id = await _two_counsellors_and_a_chat(live_server)
    await _exchange(youth, first, conv, "before")

    offered = await first.transfer(conv, second_id)
    assert offered == {"ok": True, "offered": True}
    await second.wait_for(lambda: conv in second.transfer_offers, 5)
    offer = second.transfer_offers[conv]
    assert offer == {"conversation": conv, "pseudonym": offer["pseudonym"], "from_alias": "Sana",
                     "language": "ar", "age_band": "16-17", "topic": "forced_marriage",
                     "state": "active", "handover": False}
    # The youth keeps writing to the first counsellor while the offer is open
    await _exchange(youth, first, conv, "during")

    seat = await second.transfer_answer(conv, True)

    # The second counsellor has a seat; the first is told "transferred"
    assert seat["conversation"] == conv and seat["epoch"] == 3
    await first.wait_for(lambda: first.conversations[conv].state == "ended", 5)
    assert first.conversations[conv].ended_reason == "transferred"
    await youth.wait_for(lambda: youth.conversations[conv].epoch == 3, 5)
    mine, theirs = youth.conversations[conv], second.conversations[conv]
    assert _roster_of(youth, conv) == (3, {mine.member: mine.keys.public_key,
                                           theirs.member: theirs.keys.public_key})
    assert theirs.member == seat["member"]
    # The youth's next messages decrypt at the new counsellor, and back
    await _exchange(youth, second, conv, "after")
    assert second.undecryptable == 0 and youth.undecryptable == 0
    assert first.inbox.empty()
    with pytest.raises(CallFailed):
        await first.send_text(conv, "gone")

    # Never dropped: no state change ever reached the youth, no queue again
    assert [e.data for e in emitted if e.event == "state" and e.namespace == "/youth"] == []
    assert youth.conversations[conv].state == "active"
    assert conv not in live_server.ctx.chat.queue
    await first.wait_for(lambda: first.duty_state.get("load") == 0, 5)
    await second.wait_for(lambda: second.duty_state.get("load") == 1, 5)
    actions = [e.action for e in await _audit(live_server)]
    assert "transfer_offered" in actions and "transfer_accepted" in actions


async def test_transfer_declined_changes_nothing(live_server: LiveServer) -> None:
    youth, first, second, conv, second_id = await _two_counsellors_and_a_chat(live_server)
    before = {c: _roster_of(c, conv) for c in (youth, first)}
    await first.transfer(conv, second_id)
    with pytest.raises(CallFailed) as pending:
        await first.transfer(conv, second_id)  # one offer at a time
    assert pending.value.code == "transfer_pending"
    await second.wait_for(lambda: conv in second.transfer_offers, 5)

    assert (await second.transfer_answer(conv, False)) == {"ok": True}

    await first.wait_for(lambda: bool(first.transfer_declines), 5)
    assert first.transfer_declines == [{"conversation": conv, "reason": "declined"}]
    assert {c: _roster_of(c, conv) for c in (youth, first)} == before  # same epoch, same roster
    assert conv not in second.conversations
    await _exchange(youth, first, conv, "still-us")
    with pytest.raises(CallFailed) as late:
        await second.transfer_answer(conv, True)  # the offer is gone
    assert late.value.code == "wrong_state"
    assert (await first.transfer(conv, second_id))["offered"] is True  # may offer again


async def test_unanswered_transfer_offer_times_out_as_declined(
        make_server: MakeServer) -> None:
    server = await make_server(transfer_offer_secs=1)
    youth, first, second, conv, second_id = await _two_counsellors_and_a_chat(server)
    before = _roster_of(youth, conv)
    await first.transfer(conv, second_id)
    await second.wait_for(lambda: conv in second.transfer_offers, 5)

    await first.wait_for(lambda: bool(first.transfer_declines), 4)

    assert first.transfer_declines == [{"conversation": conv, "reason": "timed_out"}]
    with pytest.raises(CallFailed) as late:
        await second.transfer_answer(conv, True)
    assert late.value.code == "wrong_state"
    assert _roster_of(youth, conv) == before
    await _exchange(youth, first, conv, "nothing-changed")


# ------------------------------------------------------ referral and tags


async def test_referral_recorded_in_audit_and_statistics_without_content(
        live_server: LiveServer) -> None:
    # Guards a fixed bug: the statistics dimensions of referrals were unknown to
    # StatsCounter, so `refer` answered `internal`.
    youth, first, _second, conv, _ = await _two_counsellors_and_a_chat(live_server)
    await _exchange(youth, first, conv, "secret-words-x7q")
    found = await first.partners("polis")
    police = next(p for p in found if p["kind"] == "police")
    assert all(p["kind"] == "police" for p in await first.partners("", kind="police"))

    reply = await first.refer(conv, police["code"])

    # The card a youth gets is the public part of what the counsellor saw:
    # no notes, no verification mark (docs/design/partners.md).
    public = {k: police[k] for k in ("code", "name", "kind", "municipality", "phone", "url",
                                     "hours")}
    assert reply["partner"] == public and "notes" in police and "verified_at" in police
    card = await youth.next_message(5)
    assert card.type == "card" and card.body["card"] == public
    assert isinstance(card.body["sent_at"], int)
    # Audit: the partner code and kind, nothing else
    rows = [e for e in await _audit(live_server) if e.action == "referral"]
    assert len(rows) == 1
    assert json.loads(rows[0].detail) == {"partner": police["code"], "role": "police"}
    everything = json.dumps([(e.actor, e.action, e.conversation, e.detail)
                             for e in await _audit(live_server)], ensure_ascii=False)
    for content in ("secret-words-x7q", police["name"], police["phone"], conv):
        assert content not in everything
    # Statistics: per kind and per partner, monthly, no conversation
    counts = await _counts(live_server)
    assert counts[("referral", "police")] == 1
    assert counts[("referral_partner", police["code"])] == 1
    with pytest.raises(CallFailed) as unknown:
        await first.refer(conv, "no-such-partner")
    assert unknown.value.code == "unknown_partner"


async def test_reason_tags_are_counted_when_the_conversation_ends(
        live_server: LiveServer) -> None:
    # Guards a fixed bug: an unknown "reason" dimension aborted `_end` half-way,
    # so a tagged conversation could never end.
    youth, first, _second, conv, _ = await _two_counsellors_and_a_chat(live_server)
    tagged = await first.tag(conv, ["violence", "control"])
    assert tagged == {"ok": True, "reasons": ["control", "violence"]}
    with pytest.raises(CallFailed) as bad:
        await first.tag(conv, ["not-a-topic"])
    assert bad.value.code == "bad_payload"
    assert not [k for k in await _counts(live_server) if k[0] == "reason"]  # not yet

    await first.end(conv)

    await youth.wait_for(lambda: youth.conversations[conv].state == "ended", 5)
    counts = await _counts(live_server)
    assert counts[("reason", "violence")] == 1 and counts[("reason", "control")] == 1
    assert ("reason", "not-a-topic") not in counts
    await asyncio.sleep(0)  # nothing else to wait for


async def test_professional_consultation_waits_apart_and_counts(live_server: LiveServer) -> None:
    counsellor = await live_server.staff_client()
    youth, pro = await live_server.youth(), await live_server.youth()
    await youth.start()
    started = await pro.start({"professional": True, "workplace_municipality": "Solna"})
    assert started["position"] == 1  # first in its own lane, not behind the youth
    await counsellor.wait_for(lambda: len(counsellor.queue.get("entries", [])) == 2, 5)
    lanes = {e["conversation"]: e["lane"] for e in counsellor.queue["entries"]}
    assert lanes[started["conversation"]] == "professional"
    await live_server.ctx.stats.flush(live_server.ctx.store)
    import time as _time

    counts = await live_server.ctx.store.get_counts(_time.strftime("%Y-%m", _time.gmtime()))
    assert counts[("contacts", "professional")] == 1
    assert counts[("workplace_municipality", "Solna")] == 1
    assert ("gender", "unsaid") in counts and counts[("contacts", "youth")] == 1
