"""The reference client against a real server: the E2E rules it implements
(roster-bound boxes, replay/gap, stale epoch, acks, resume) over real sockets.

Some tests play a lying or out-of-order server by emitting events straight
from the server's socket.io object; the relay itself is never changed.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from chatserver.client.reference import CallFailed, ReferenceClient
from chatserver.crypto import e2e
from chatserver.crypto.tokens import b64e
from tests.conftest import LiveServer
from tests.helpers.emits import spy_emits
from tests.helpers.waiting import eventually


async def _emit_to(server: LiveServer, conv: str, member: str, event: str,
                   payload: dict[str, Any]) -> None:
    """Send an event to one member as the server would (a lying or reordering server)."""
    conn = server.ctx.chat.conversations[conv].members[member].conn
    assert conn is not None
    await server.ctx.sio.emit(event, payload, to=conn.sid, namespace=conn.namespace)


def _roster_payload(server: LiveServer, conv: str, extra: list[dict[str, Any]] | None = None
                    ) -> dict[str, Any]:
    c = server.ctx.chat.conversations[conv]
    return {"conversation": conv, "state": c.state.value, "epoch": c.epoch,
            "members": [m.public() for m in c.members.values()] + (extra or [])}


async def test_conversation_both_ways_server_relays_only_ciphertext(
        live_server: LiveServer) -> None:
    emitted = spy_emits(live_server)
    youth, counsellor, conv = await live_server.chat()
    y_conv, c_conv = youth.conversations[conv], counsellor.conversations[conv]
    texts_y = [f"ung-{i}-Jag behöver hjälp ✋" for i in range(3)]
    texts_c = [f"kurator-{i}-Vi finns här" for i in range(3)]

    # When both write, interleaved
    for ty, tc in zip(texts_y, texts_c, strict=True):
        await youth.send_text(conv, ty)
        await counsellor.send_text(conv, tc)
    got_c = [await counsellor.next_message(5) for _ in texts_y]
    got_y = [await youth.next_message(5) for _ in texts_c]

    # Then each side reads the other's text with the metadata the server saw
    assert [m.text for m in got_c] == texts_y and [m.text for m in got_y] == texts_c
    assert [m.seq for m in got_c] == [1, 2, 3] and {m.epoch for m in got_c} == {1}
    assert {m.sender for m in got_c} == {y_conv.member} and got_c[0].role == "youth"
    assert {m.role for m in got_y} == {"counsellor"}
    for client in (youth, counsellor):
        assert client.gaps == [] and client.undecryptable == 0 and client.replays == 0
    assert "Jag behöver" not in repr(got_c[0])  # plaintext stays out of reprs

    # And every box the server emitted is padded ciphertext without the text
    boxes = [e.data for e in emitted if e.event == "box"]
    assert len(boxes) == 6
    for box in boxes:
        ct = base64.urlsafe_b64decode(box["ct"] + "=" * (-len(box["ct"]) % 4))
        assert len(ct) == 256 + 16
        assert set(box) == {"conversation", "from", "to", "epoch", "seq", "nonce", "ct"}
    wire = json.dumps(emitted, ensure_ascii=False)
    for text in texts_y + texts_c:
        assert text not in wire and text.split("-")[2] not in wire

    # And cumulative `delivered` acks emptied the server's buffers
    server_conv = live_server.ctx.chat.conversations[conv]
    await eventually(lambda: all(m.inbox_count == 0 for m in server_conv.members.values()))

    # When the counsellor ends it, both sides wipe their keys
    await counsellor.end(conv)
    await youth.wait_for(lambda: y_conv.state == "ended", 5)
    assert y_conv.ended_reason == "done" and y_conv.keys.wiped and c_conv.keys.wiped


async def test_stale_epoch_reencrypts_for_new_roster_with_same_seq(
        live_server: LiveServer) -> None:
    youth, counsellor, conv = await live_server.chat()
    await youth.send_text(conv, "första")
    assert (await counsellor.next_message(5)).seq == 1
    # Given the roster moved to epoch 2 on the server, but its event is late
    live_server.ctx.chat.conversations[conv].epoch += 1

    async def late_roster() -> None:
        await asyncio.sleep(0.2)
        for member in (youth.conversations[conv].member, counsellor.conversations[conv].member):
            await _emit_to(live_server, conv, member, "roster", _roster_payload(live_server, conv))

    # When the youth sends at epoch 1, it is told stale_epoch, waits, re-encrypts
    task = asyncio.create_task(late_roster())
    seq = await youth.send_text(conv, "andra")
    await task

    # Then the same seq goes through at epoch 2 and opens under the new roster
    got = await counsellor.next_message(5)
    assert (seq, got.seq, got.epoch, got.text) == (2, 2, 2, "andra")
    assert counsellor.gaps == [] and counsellor.undecryptable == 0


async def test_stale_epoch_without_a_new_roster_fails_cleanly(live_server: LiveServer) -> None:
    youth, _, conv = await live_server.chat()
    youth.call_timeout = 0.5
    live_server.ctx.chat.conversations[conv].epoch += 1  # and no roster ever comes
    with pytest.raises(CallFailed) as failed:
        await youth.send_text(conv, "hallå")
    assert failed.value.code == "stale_epoch"
    assert youth.conversations[conv].sent_seq == 0  # the seq was not used up


async def test_hidden_member_in_receivers_roster_makes_box_unverifiable(
        live_server: LiveServer) -> None:
    youth, counsellor, conv = await live_server.chat()
    y_member = youth.conversations[conv].member
    c_member = counsellor.conversations[conv].member
    # Given a server that moves to epoch 2 and shows the counsellor an extra member
    live_server.ctx.chat.conversations[conv].epoch += 1
    hidden = {"member": "ab" * 16, "role": "counsellor", "alias": "",
              "kx_pk": b64e(e2e.KxKeyPair.generate().public_key), "seq": 0}
    await _emit_to(live_server, conv, y_member, "roster", _roster_payload(live_server, conv))
    await _emit_to(live_server, conv, c_member, "roster",
                   _roster_payload(live_server, conv, [hidden]))
    await youth.wait_for(lambda: youth.conversations[conv].epoch == 2, 5)
    await counsellor.wait_for(lambda: counsellor.conversations[conv].epoch == 2, 5)

    # When the youth writes under its (honest) view
    await youth.send_text(conv, "bara till dig")

    # Then the counsellor cannot verify it and shows no text
    await counsellor.wait_for(lambda: counsellor.undecryptable == 1, 5)
    assert counsellor.inbox.empty()


async def test_replayed_box_is_dropped_and_gap_is_reported(live_server: LiveServer) -> None:
    emitted = spy_emits(live_server)
    youth, counsellor, conv = await live_server.chat()
    await counsellor.send_text(conv, "ett")
    await youth.next_message(5)
    first = next(e.data for e in emitted if e.event == "box")
    y_conv = youth.conversations[conv]

    # When the server sends the same box again, it is dropped (and re-acked)
    await _emit_to(live_server, conv, y_conv.member, "box", dict(first))
    await youth.wait_for(lambda: youth.replays == 1, 5)

    # When seq 2 and 3 never arrive but 4 does, 4 is shown and the gap reported
    c_conv = counsellor.conversations[conv]
    for seq in (2, 3, 4):  # the counsellor's client seals; the relay skips 2 and 3
        ad = e2e.associated_data(bytes.fromhex(conv), 1, c_conv.roster.hash,
                                 c_conv.keys.public_key, y_conv.keys.public_key, seq)
        nonce, ct = e2e.seal_box(c_conv.session(y_conv.keys.public_key).tx, ad,
                                 {"type": "msg", "text": f"nr {seq}", "sent_at": 1})
        if seq == 4:
            await _emit_to(live_server, conv, y_conv.member, "box", {
                **first, "seq": seq, "nonce": b64e(nonce), "ct": b64e(ct)})
    got = await youth.next_message(5)
    assert (got.seq, got.text) == (4, "nr 4")
    assert [(g.sender, g.first, g.last) for g in youth.gaps] == [(c_conv.member, 2, 3)]
    assert youth.inbox.empty() and youth.undecryptable == 0


async def test_tampered_box_is_counted_not_shown(live_server: LiveServer) -> None:
    emitted = spy_emits(live_server)
    youth, counsellor, conv = await live_server.chat()
    await counsellor.send_text(conv, "äkta")
    await youth.next_message(5)
    box = next(e.data for e in emitted if e.event == "box")
    ct = bytearray(base64.urlsafe_b64decode(box["ct"] + "=" * (-len(box["ct"]) % 4)))
    ct[5] ^= 1
    member = youth.conversations[conv].member
    await _emit_to(live_server, conv, member, "box", {**box, "seq": 2, "ct": b64e(bytes(ct))})
    await youth.wait_for(lambda: youth.undecryptable == 1, 5)
    # The forged seq 2 did not move the counter: the real seq 2 still opens.
    await counsellor.send_text(conv, "nästa")
    got = await youth.next_message(5)
    assert (got.seq, got.text) == (2, "nästa") and youth.gaps == []


async def test_resume_gets_only_unacknowledged_boxes_and_seq_continues(
        live_server: LiveServer) -> None:
    youth, counsellor, conv = await live_server.chat()
    await counsellor.send_text(conv, "före")
    await youth.next_message(5)
    server_youth = live_server.ctx.chat.conversations[conv].youth()
    assert server_youth is not None
    await eventually(lambda: server_youth.inbox_count == 0)  # acked

    # When the youth's transport drops and two messages wait on the server
    await youth.disconnect()
    await counsellor.send_text(conv, "under")
    await counsellor.send_text(conv, "avbrottet")
    await youth.connect(live_server.url, "/youth")
    reply = await youth.resume(conv)
    assert reply["state"] == "active" and reply["epoch"] == 1

    # Then exactly those two arrive, once, and the youth can keep writing
    got = [await youth.next_message(5) for _ in range(2)]
    assert [(m.seq, m.text) for m in got] == [(2, "under"), (3, "avbrottet")]
    await youth.send_text(conv, "tillbaka")
    assert (await counsellor.next_message(5)).text == "tillbaka"
    await asyncio.sleep(0.2)
    assert youth.replays == 0 and youth.inbox.empty()


async def test_oversize_text_refused_before_sending(live_server: LiveServer) -> None:
    youth, counsellor, conv = await live_server.chat()
    with pytest.raises(e2e.PlaintextTooLarge):
        await youth.send_text(conv, "x" * live_server.settings.max_padded_plaintext_bytes)
    assert await youth.send_text(conv, "kort") == 1  # no seq was used up
    assert (await counsellor.next_message(5)).text == "kort"


async def test_connect_refusals_carry_the_code(live_server: LiveServer) -> None:
    client = ReferenceClient(call_timeout=3)
    # A foreign Origin is already refused by engine.io's CORS check (HTTP 400),
    # before the namespace could name a code.
    with pytest.raises(CallFailed) as origin:
        await client.connect(live_server.url, "/youth",
                             headers={"Origin": "https://evil.example"})
    assert origin.value.code in ("bad_origin", "connect_failed")
    with pytest.raises(CallFailed) as session:
        await client.connect(live_server.url, "/staff")
    assert session.value.code == "session_required"
    assert not client.connected


def _seal_as(sender: ReferenceClient, recipient: ReferenceClient, conv: str, epoch: int,
             roster_hash: bytes, seq: int, text: str) -> dict[str, Any]:
    """A box exactly as the sender's client would make it, for a chosen epoch."""
    s, r = sender.conversations[conv], recipient.conversations[conv]
    ad = e2e.associated_data(bytes.fromhex(conv), epoch, roster_hash, s.keys.public_key,
                             r.keys.public_key, seq)
    nonce, ct = e2e.seal_box(s.session(r.keys.public_key).tx, ad,
                             {"type": "msg", "text": text, "sent_at": 1})
    return {"conversation": conv, "from": s.member, "to": r.member, "epoch": epoch,
            "seq": seq, "nonce": b64e(nonce), "ct": b64e(ct)}


async def test_boxes_open_under_the_roster_of_their_own_epoch(live_server: LiveServer) -> None:
    youth, counsellor, conv = await live_server.chat()
    c_member = counsellor.conversations[conv].member
    hash_1 = youth.conversations[conv].roster.hash
    live_server.ctx.chat.conversations[conv].epoch += 1
    roster_2 = _roster_payload(live_server, conv)
    hash_2 = e2e.roster_hash(bytes.fromhex(conv), 2, [
        e2e.Member(bytes.fromhex(m["member"]), m["role"],
                   base64.urlsafe_b64decode(m["kx_pk"] + "=")) for m in roster_2["members"]])

    # Given seq 1 sealed at epoch 1 and seq 2 sealed at epoch 2, where seq 2
    # arrives first and before the epoch-2 roster,
    await _emit_to(live_server, conv, c_member, "box",
                   _seal_as(youth, counsellor, conv, 2, hash_2, 2, "epok 2"))
    await asyncio.sleep(0.2)
    assert counsellor.inbox.empty() and counsellor.undecryptable == 0  # it waits
    # when seq 1 comes, it opens under the epoch-1 roster;
    await _emit_to(live_server, conv, c_member, "box",
                   _seal_as(youth, counsellor, conv, 1, hash_1, 1, "epok 1"))
    got = await counsellor.next_message(5)
    assert (got.epoch, got.seq, got.text) == (1, 1, "epok 1")
    # and when the roster arrives, seq 2 opens under it, with no gap.
    await _emit_to(live_server, conv, c_member, "roster", roster_2)
    got = await counsellor.next_message(5)
    assert (got.epoch, got.seq, got.text) == (2, 2, "epok 2")
    assert counsellor.undecryptable == 0 and counsellor.gaps == []


@pytest.mark.slow
async def test_new_counsellor_after_timeout_starts_from_roster_seq(
        live_server: LiveServer) -> None:
    youth, first, conv = await live_server.chat()
    await youth.send_text(conv, "ett")
    await youth.send_text(conv, "två")
    await first.next_message(5)
    await first.next_message(5)

    # Given the counsellor's page dies and the grace period runs out,
    await first.disconnect()
    y_conv = youth.conversations[conv]
    await youth.wait_for(lambda: y_conv.epoch == 2 and y_conv.state == "waiting",
                         live_server.settings.grace_secs + 3)
    assert len(y_conv.roster.members) == 1

    # when another counsellor takes the youth (epoch 3),
    second = await live_server.staff_client()
    await second.take_next()
    await youth.wait_for(lambda: y_conv.epoch == 3, 5)

    # then the youth's seq 3 is "next", not a gap, for the newcomer, both ways.
    assert await youth.send_text(conv, "tre") == 3
    got = await second.next_message(5)
    assert (got.seq, got.epoch, got.text) == (3, 3, "tre") and second.gaps == []
    await second.send_text(conv, "hej, jag tar över")
    assert (await youth.next_message(5)).text == "hej, jag tar över"
