"""Presence and the handover on transfer, over real sockets
(docs/design/conversations.md "Presence", docs/protocol.md "Handover").

A youth whose page is gone past presence_grace_secs is shown offline in the
queue (counted apart), passed over by take next, claimed only when the
counsellor says so, and shown offline to their counsellor; coming back clears
it. A transfer offer can carry the conversation so far and a note, sealed
from the sending console to the receiving one: the receiver opens it after
accepting; a decline or a time-out leaves nothing on the server.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from chatserver.client.reference import CallFailed, ReferenceClient, staff_login
from chatserver.crypto import e2e, handover
from chatserver.crypto.tokens import b64e
from chatserver.settings import REPO_ROOT
from tests.conftest import LiveServer, MakeServer
from tests.helpers.waiting import eventually

HISTORY = [{"who": "youth", "text": "canary-history-line", "sent_at": 1_700_000_000_000}]
NOTE = "canary-handover-note: she fears her brother"


def _entry(client: ReferenceClient, conv: str) -> dict[str, Any] | None:
    for e in client.queue.get("entries", ()):
        if e.get("conversation") == conv:
            return dict(e)
    return None


async def _drop(youth: ReferenceClient) -> None:
    await youth.disconnect()


async def _back(server: LiveServer, youth: ReferenceClient, conv: str) -> None:
    await youth.connect(server.url, "/youth")
    await youth.resume(conv)


async def test_offline_youth_in_the_queue(make_server: MakeServer) -> None:
    server = await make_server(presence_grace_secs=1, grace_secs=60)
    counsellor = await server.staff_client()
    here = await server.youth()
    here_conv = (await here.start())["conversation"]
    gone = await server.youth()
    conv = (await gone.start())["conversation"]
    await eventually(lambda: _entry(counsellor, conv) is not None)
    assert _entry(counsellor, conv)["offline"] is False  # type: ignore[index]

    await _drop(gone)
    await eventually(lambda: (_entry(counsellor, conv) or {}).get("offline") is True)
    assert counsellor.queue["total"] == 2 and counsellor.queue["offline"] == 1
    assert _entry(counsellor, here_conv)["offline"] is False  # type: ignore[index]

    # The first in the queue is offline: take next passes them by.
    taken = await counsellor.take_next()
    assert taken["conversation"] == here_conv and taken["youth_online"] is True
    with pytest.raises(CallFailed) as refused:
        await counsellor.take_next()
    assert refused.value.code == "queue_empty"
    # A claim by name asks first: refused without the flag, and nothing changed.
    with pytest.raises(CallFailed) as refused:
        await counsellor.claim(conv)
    assert refused.value.code == "youth_offline"
    assert conv in server.ctx.chat.queue

    await _back(server, gone, conv)
    await eventually(lambda: (_entry(counsellor, conv) or {}).get("offline") is False)
    assert counsellor.queue["offline"] == 0
    await _drop(gone)
    await eventually(lambda: (_entry(counsellor, conv) or {}).get("offline") is True)
    seat = await counsellor.claim(conv, offline_ok=True)
    assert seat["youth_online"] is False


async def test_offline_youth_in_a_conversation(make_server: MakeServer) -> None:
    server = await make_server(presence_grace_secs=1, grace_secs=60)
    creds = await server.add_staff()
    counsellor = await server.staff_client(creds)
    youth = await server.youth()
    conv = (await youth.start())["conversation"]
    assert (await counsellor.claim(conv))["youth_online"] is True
    await youth.wait_for(lambda: youth.conversations[conv].epoch == 1, 5)
    await _drop(youth)
    await eventually(lambda: counsellor.presence.get(conv, {}).get("online") is False)
    away = counsellor.presence[conv]
    assert away["member"] == youth.conversations[conv].member and isinstance(away["since"], int)

    await _back(server, youth, conv)
    await eventually(lambda: counsellor.presence.get(conv, {}).get("online") is True)
    await counsellor.send_text(conv, "still here")
    assert (await youth.next_message(5)).text == "still here"

    # A console that was itself away when the push went learns it on resume.
    await counsellor.disconnect()
    await _drop(youth)
    await eventually(lambda: conv in server.ctx.chat.away)
    login = await staff_login(server.url, creds.username, creds.password, creds.code(1))
    await counsellor.connect(server.url, "/staff", headers={"Cookie": login.cookie})
    assert (await counsellor.resume(conv))["youth_online"] is False


async def test_a_short_drop_shows_nothing(make_server: MakeServer) -> None:
    server = await make_server(presence_grace_secs=30, grace_secs=60)
    youth, counsellor, conv = await server.chat()
    await _drop(youth)
    await _back(server, youth, conv)
    server.ctx.chat.tick()
    assert conv not in server.ctx.chat.away and conv not in counsellor.presence


# ---------------------------------------------------------------- handover


async def _transfer_setup(server: LiveServer) -> tuple[
        ReferenceClient, ReferenceClient, ReferenceClient, str, dict[str, Any]]:
    first = await server.staff_client(await server.add_staff(alias="Sana"))
    second = await server.staff_client(await server.add_staff(alias="Omid"))
    await first.register_handover_key()
    second_pk = await second.register_handover_key()
    youth = await server.youth()
    conv = (await youth.start())["conversation"]
    await first.claim(conv)
    await youth.wait_for(lambda: youth.conversations[conv].epoch == 1, 5)
    colleagues = await first.colleagues()
    assert colleagues[0]["alias"] == "Omid" and colleagues[0]["handover_pk"] == second_pk
    return youth, first, second, conv, colleagues[0]


async def test_handover_reaches_the_receiver_end_to_end(live_server: LiveServer) -> None:
    _youth, first, second, conv, colleague = await _transfer_setup(live_server)
    body = {"note": NOTE, "items": HISTORY, "from_alias": "Sana"}
    await first.transfer(conv, int(colleague["staff"]), handover_to=colleague["handover_pk"],
                         handover_body=body)
    await second.wait_for(lambda: conv in second.transfer_offers, 5)
    assert second.transfer_offers[conv]["handover"] is True
    # The server holds ciphertext only.
    held = live_server.ctx.chat.conversations[conv].transfer
    assert held is not None and held.handover is not None
    assert "canary" not in repr(held) and "canary" not in str(held.handover.public())

    seat = await second.transfer_answer(conv, True)
    opened = second.open_handover(conv, seat["handover"])
    assert opened["note"] == NOTE and opened["items"] == HISTORY
    # Given once, then gone from the server.
    assert live_server.ctx.chat.conversations[conv].transfer is None
    entries = [e async for e in live_server.ctx.store.iter_audit()]
    offered = [e for e in entries if e.action == "transfer_offered"]
    assert offered and json.loads(offered[-1].detail).get("handover") is True
    assert not any("canary" in repr(e) for e in entries)


async def test_handover_refusals_change_nothing(live_server: LiveServer) -> None:
    _youth, first, _second, conv, colleague = await _transfer_setup(live_server)
    to = int(colleague["staff"])
    own = first.handover_keys
    assert own is not None
    good_pk = colleague["handover_pk"]
    nonce = b64e(bytes(24))

    async def offer(box: dict[str, Any]) -> str:
        with pytest.raises(CallFailed) as refused:
            await first.call("transfer", {"conversation": conv, "to": to, "handover": box})
        assert live_server.ctx.chat.conversations[conv].transfer is None
        return refused.value.code

    base = {"from_pk": b64e(own.public_key), "to_pk": good_pk, "nonce": nonce,
            "ct": b64e(bytes(256 + 16))}
    # Larger than one full send (3 × 8 KiB padded): a clear too_large.
    assert await offer({**base, "ct": b64e(bytes(3 * 8192 + 256 + 16))}) == "too_large"
    assert await offer({**base, "ct": b64e(bytes(300))}) == "bad_payload"  # not padded
    stranger = e2e.KxKeyPair.generate()
    assert await offer({**base, "to_pk": b64e(stranger.public_key)}) == "unknown_recipient"
    assert await offer({**base, "from_pk": b64e(stranger.public_key)}) == "not_allowed"


@pytest.mark.parametrize("how", ["declined", "timed_out"])
async def test_no_handover_left_after_decline_or_time_out(make_server: MakeServer,
                                                         how: str) -> None:
    server = await make_server(transfer_offer_secs=1 if how == "timed_out" else 120)
    _youth, first, second, conv, colleague = await _transfer_setup(server)
    to = int(colleague["staff"])
    await first.transfer(conv, to, handover_to=colleague["handover_pk"],
                         handover_body={"note": NOTE, "items": HISTORY})
    await second.wait_for(lambda: conv in second.transfer_offers, 5)
    if how == "declined":
        await second.transfer_answer(conv, False)
    await first.wait_for(lambda: bool(first.transfer_declines), 10)
    assert first.transfer_declines[-1]["reason"] == how
    assert server.ctx.chat.conversations[conv].transfer is None

    # A later offer without a handover is accepted with none: the old one is gone.
    await first.transfer(conv, to)
    await second.wait_for(lambda: conv in second.transfer_offers, 5)
    assert second.transfer_offers[conv]["handover"] is False
    seat = await second.transfer_answer(conv, True)
    assert "handover" not in seat


def test_the_handover_label_is_the_one_the_pages_use() -> None:
    """web_client/src/lib/handover.js holds the label as hex (no hash call)."""
    page = (REPO_ROOT / "web_client" / "src" / "lib" / "handover.js").read_text()
    assert hashlib.blake2b(b"cv1-handover", digest_size=32).hexdigest() in page
    assert handover.HANDOVER_LABEL.hex() in page
