"""Liaison invites over real sockets (docs/design/invites.md):
the counsellor invites, the liaison joins with the link's secret, the counsellor
checks the MAC and introduces the liaison end to end, the youth consents; the
liaison then reads what follows and nothing from before. Expired, reused,
unknown and revoked invites get one answer; an invite for one conversation
cannot reach another; a liaison nobody admitted, or the youth declined, never
receives a box; the youth or the counsellor can remove the liaison.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from typing import Any

import pytest

from chatserver.client.reference import (
    CallFailed,
    Invite,
    ReferenceClient,
    RefusedLocally,
    invite_fragment,
    parse_invite_fragment,
)
from chatserver.crypto import e2e
from chatserver.crypto.tokens import b64d, b64e
from chatserver.settings import REPO_ROOT
from tests.conftest import LiveServer, MakeServer
from tests.helpers.emits import Emit, spy_emits
from tests.helpers.waiting import eventually


def _boxes_to(emitted: list[Emit], namespace: str) -> list[dict[str, Any]]:
    return [data for event, data, ns, _ in emitted if event == "box" and ns == namespace]


async def _exchange(youth: ReferenceClient, counsellor: ReferenceClient, conv: str,
                    tag: str) -> None:
    """One message each way between youth and counsellor, both read."""
    await youth.send_text(conv, f"{tag}-youth")
    assert (await _next_of(counsellor, "msg")).text == f"{tag}-youth"
    await counsellor.send_text(conv, f"{tag}-counsellor")
    assert (await _next_of(youth, "msg")).text == f"{tag}-counsellor"


async def _next_of(client: ReferenceClient, kind: str) -> Any:
    while True:
        got = await client.next_message(5)
        if got.type == kind:
            return got


async def _request_at(counsellor: ReferenceClient, conv: str) -> str:
    await counsellor.wait_for(lambda: bool(counsellor.join_requests.get(conv)), 5)
    return next(iter(counsellor.join_requests[conv]))


async def _seat(youth: ReferenceClient, counsellor: ReferenceClient, liaison: ReferenceClient,
                conv: str, role: str = "police") -> tuple[Invite, str]:
    """Invite → join → MAC checked → intro → admit → consent → joined."""
    invite = await counsellor.invite_create(conv, role)
    reply = await liaison.join(invite.fragment)
    assert reply["conversation"] == conv and reply["role"] == role
    request = await _request_at(counsellor, conv)
    assert request == reply["request"] and counsellor.join_requests[conv][request].verified
    await counsellor.admit(conv, request, True)
    await youth.wait_for(lambda: request in youth.consent_requests.get(conv, {}), 5)
    await youth.consent(conv, request, True)
    await liaison.wait_for(lambda: conv in liaison.conversations, 5)
    return invite, request


# -------------------------------------------------------------- the whole way


async def test_liaison_reads_what_follows_consent_and_nothing_before(
        live_server: LiveServer) -> None:
    emitted = spy_emits(live_server)
    youth, counsellor, conv = await live_server.chat()
    await _exchange(youth, counsellor, conv, "before")
    earlier = [dict(d) for d in _boxes_to(emitted, "/youth") + _boxes_to(emitted, "/staff")]
    assert len(earlier) == 2
    liaison = await live_server.liaison()

    # The counsellor creates an invite: only its id reaches the server
    invite = await counsellor.invite_create(conv, "police")
    assert list(live_server.ctx.chat.invites) == [b64e(invite.invite_id)]
    assert b64e(invite.secret) not in repr(live_server.ctx.chat.invites)
    assert parse_invite_fragment("#" + invite.fragment) == (invite.secret, conv)

    # The liaison joins; the counsellor's page verifies the MAC
    joined = await liaison.join(invite.fragment)
    assert set(joined) == {"ok", "conversation", "request", "role"}
    request = await _request_at(counsellor, conv)
    seen = counsellor.join_requests[conv][request]
    assert seen.verified and seen.role == "police"
    assert seen.comparison_code is not None and len(seen.comparison_code) == 6
    assert youth.consent_requests == {} and not liaison.conversations  # nobody asked yet

    # Admitting introduces the liaison to the youth end to end, then asks consent
    await counsellor.admit(conv, request, True)
    intro = await _next_of(youth, "intro")
    assert intro.role == "counsellor"
    assert (intro.body["request"], intro.body["role"]) == (request, "police")
    assert b64d(intro.body["kx_pk"]) == seen.kx_pk
    await youth.wait_for(lambda: request in youth.consent_requests.get(conv, {}), 5)
    await youth.consent(conv, request, True)

    # The liaison is seated: a new epoch and roster for everyone
    await liaison.wait_for(lambda: conv in liaison.conversations, 5)
    mine = liaison.conversations[conv]
    assert (mine.role, mine.epoch, mine.state) == ("liaison", 2, "active")
    for client in (youth, counsellor):
        await client.wait_for(lambda c=client: c.conversations[conv].epoch == 2, 5)  # type: ignore[misc]
        assert {m.role for m in client.conversations[conv].roster.members.values()} == {
            "youth", "counsellor", "liaison"}
    # Counsellor and liaison read the same six digits to each other
    counsellor_member = counsellor.conversations[conv].member
    assert liaison.comparison_codes(conv) == {counsellor_member: seen.comparison_code}

    # New messages reach the liaison, and the liaison's reach both
    await youth.send_text(conv, "after-youth")
    await counsellor.send_text(conv, "after-counsellor")
    got = sorted([(await liaison.next_message(5)).text for _ in range(2)])
    assert got == ["after-counsellor", "after-youth"]
    await liaison.send_text(conv, "after-liaison")
    assert (await _next_of(youth, "msg")).text == "after-counsellor"
    assert (await _next_of(youth, "msg")).text == "after-liaison"
    assert (await _next_of(counsellor, "msg")).text == "after-youth"
    assert (await _next_of(counsellor, "msg")).text == "after-liaison"
    assert liaison.undecryptable == 0 and liaison.gaps == [] and liaison.inbox.empty()

    # The server never addressed an earlier box to the liaison ...
    to_liaison = _boxes_to(emitted, "/liaison")
    assert len(to_liaison) == 2
    assert all(b["epoch"] >= 2 and b["to"] == mine.member for b in to_liaison)
    # ... and the earlier ones cannot be opened with the liaison's keys anyway
    youth_pk = youth.conversations[conv].keys.public_key
    old_view = youth.conversations[conv].rosters[1]
    for box in earlier:
        sender_pk = old_view.members[box["from"]].kx_pk
        ad = e2e.associated_data(bytes.fromhex(conv), box["epoch"], old_view.hash, sender_pk,
                                 mine.keys.public_key, box["seq"])
        with pytest.raises(e2e.DecryptFailed):
            e2e.open_box(mine.session(sender_pk).rx, ad, b64d(box["nonce"]), b64d(box["ct"]))
    assert youth_pk != mine.keys.public_key


# ------------------------------------------------------- turned away: no box


async def test_counsellor_declines_liaison_never_receives_a_box(
        live_server: LiveServer) -> None:
    emitted = spy_emits(live_server)
    youth, counsellor, conv = await live_server.chat()
    liaison = await live_server.liaison()
    invite = await counsellor.invite_create(conv, "health")
    await liaison.join(invite.fragment)
    request = await _request_at(counsellor, conv)

    await counsellor.admit(conv, request, False)

    await liaison.wait_for(lambda: conv in liaison.join_declined, 5)
    await _exchange(youth, counsellor, conv, "private")
    assert youth.consent_requests == {} and youth.intros == {}  # the youth was never asked
    assert youth.conversations[conv].epoch == 1
    assert liaison.inbox.empty() and liaison.undecryptable == 0
    assert not liaison.conversations and _boxes_to(emitted, "/liaison") == []


async def test_youth_declines_liaison_never_receives_a_box(live_server: LiveServer) -> None:
    emitted = spy_emits(live_server)
    youth, counsellor, conv = await live_server.chat()
    liaison = await live_server.liaison()
    invite = await counsellor.invite_create(conv, "social_services")
    await liaison.join(invite.fragment)
    request = await _request_at(counsellor, conv)
    await counsellor.admit(conv, request, True)
    await youth.wait_for(lambda: request in youth.consent_requests.get(conv, {}), 5)

    await youth.consent(conv, request, False)

    await liaison.wait_for(lambda: conv in liaison.join_declined, 5)
    await counsellor.wait_for(lambda: bool(counsellor.consent_declines), 5)
    assert counsellor.consent_declines == [{"conversation": conv, "request": request}]
    await _exchange(youth, counsellor, conv, "still-two")
    for client in (youth, counsellor):
        view = client.conversations[conv]
        assert view.epoch == 1 and len(view.roster.members) == 2
    assert liaison.inbox.empty() and liaison.undecryptable == 0
    assert not liaison.conversations and _boxes_to(emitted, "/liaison") == []
    assert request not in live_server.ctx.chat.conversations[conv].requests


async def test_youth_consents_only_to_the_key_the_counsellor_introduced(
        live_server: LiveServer) -> None:
    youth, counsellor, conv = await live_server.chat()
    liaison = await live_server.liaison()
    invite = await counsellor.invite_create(conv, "police")
    await liaison.join(invite.fragment)
    request = await _request_at(counsellor, conv)

    # No introduction at all (a page bypassing intro, or a server asking on its own)
    await counsellor.call("admit", {"conversation": conv, "request": request, "accept": True})
    await youth.wait_for(lambda: request in youth.consent_requests.get(conv, {}), 5)
    with pytest.raises(RefusedLocally) as missing:
        await youth.consent(conv, request, True)
    assert missing.value.reason == "no_intro"

    # An introduction of another key than the one the server asks about
    other = e2e.KxKeyPair.generate().public_key
    await counsellor.send_message(conv, {"type": "intro", "request": request, "role": "police",
                                         "kx_pk": b64e(other), "sent_at": 1})
    await _next_of(youth, "intro")
    with pytest.raises(RefusedLocally) as mismatch:
        await youth.consent(conv, request, True)
    assert mismatch.value.reason == "intro_mismatch"
    assert live_server.ctx.chat.conversations[conv].requests[request].state == "consent"

    # Declining needs no introduction
    await youth.consent(conv, request, False)
    await liaison.wait_for(lambda: conv in liaison.join_declined, 5)
    assert not liaison.conversations


# ------------------------------------------------------ one answer for all


async def test_expired_reused_unknown_and_revoked_invites_are_one_answer(
        make_server: MakeServer) -> None:
    server = await make_server(invite_ttl_secs=1)
    _youth, counsellor, conv = await server.chat()
    used = await counsellor.invite_create(conv, "police")
    stale = await counsellor.invite_create(conv, "health")
    first = await server.liaison()
    await first.join(used.fragment)

    async def refused(fragment: str) -> tuple[str, dict[str, Any]]:
        client = await server.liaison()  # a fresh connection: three tries each
        with pytest.raises(CallFailed) as exc:
            await client.join(fragment)
        return exc.value.code, exc.value.info

    reused = await refused(used.fragment)
    unknown = await refused(invite_fragment(e2e.new_invite_secret(), conv))
    await asyncio.sleep(1.2)
    expired = await refused(stale.fragment)
    assert reused == unknown == expired == ("bad_invite", {})
    await eventually(lambda: server.ctx.chat.invites == {}, 2)  # purged by the next tick


async def test_ending_the_conversation_revokes_invites_and_turns_away_waiters(
        live_server: LiveServer) -> None:
    _youth, counsellor, conv = await live_server.chat()
    waiting, late = await live_server.liaison(), await live_server.liaison()
    first = await counsellor.invite_create(conv, "police")
    second = await counsellor.invite_create(conv, "health")
    await waiting.join(first.fragment)
    await _request_at(counsellor, conv)

    await counsellor.end(conv)

    await waiting.wait_for(lambda: conv in waiting.join_declined, 5)
    with pytest.raises(CallFailed) as revoked:
        await late.join(second.fragment)
    assert revoked.value.code == "bad_invite"
    assert live_server.ctx.chat.invites == {} and counsellor.invites == {}


async def test_three_join_tries_per_connection(live_server: LiveServer) -> None:
    _youth, counsellor, conv = await live_server.chat()
    invite = await counsellor.invite_create(conv, "police")
    liaison = await live_server.liaison()
    for _ in range(3):
        with pytest.raises(CallFailed) as bad:
            await liaison.join(invite_fragment(e2e.new_invite_secret(), conv))
        assert bad.value.code == "bad_invite"
    with pytest.raises(CallFailed) as limited:
        await liaison.join(invite.fragment)  # even the real one
    assert limited.value.code == "rate_limited" and limited.value.info["retry_after_secs"] > 0
    assert b64e(invite.invite_id) in live_server.ctx.chat.invites  # not used up


# ------------------------------------------------ one conversation, not another


async def test_an_invite_for_one_conversation_cannot_reach_another(
        live_server: LiveServer) -> None:
    emitted = spy_emits(live_server)
    y1, c1, conv_a = await live_server.chat()
    y2, c2, conv_b = await live_server.chat()
    invite = await c1.invite_create(conv_a, "police")

    # A liaison who claims the link is for B: the server routes by the invite
    # (to A), and A's counsellor finds the MAC bound to B, so will not admit
    forger = await live_server.liaison()
    reply = await forger.join(invite_fragment(invite.secret, conv_b))
    assert reply["conversation"] == conv_a
    request = await _request_at(c1, conv_a)
    assert not c1.join_requests[conv_a][request].verified
    with pytest.raises(RefusedLocally):
        await c1.admit(conv_a, request, True)
    await c1.admit(conv_a, request, False)
    await forger.wait_for(lambda: conv_a in forger.join_declined, 5)

    # An honest liaison for A: B's counsellor can neither see nor admit it
    honest = await live_server.liaison()
    second = await c1.invite_create(conv_a, "health")
    reply = await honest.join(second.fragment)
    request = reply["request"]
    await _request_at(c1, conv_a)
    assert c2.join_requests == {}
    for conv in (conv_b, conv_a):
        with pytest.raises(CallFailed) as nope:
            await c2.call("admit", {"conversation": conv, "request": request, "accept": True})
        assert nope.value.code == ("wrong_state" if conv == conv_b else "not_member")
    assert y2.consent_requests == {}

    # Seated in A, the liaison reads A and never anything of B
    await c1.admit(conv_a, request, True)
    await y1.wait_for(lambda: request in y1.consent_requests.get(conv_a, {}), 5)
    await y1.consent(conv_a, request, True)
    await honest.wait_for(lambda: conv_a in honest.conversations, 5)
    await _exchange(y2, c2, conv_b, "in-b")
    await y1.send_text(conv_a, "in-a")
    assert (await honest.next_message(5)).text == "in-a"
    await asyncio.sleep(0.2)
    assert honest.inbox.empty() and honest.undecryptable == 0
    assert {b["conversation"] for b in _boxes_to(emitted, "/liaison")} == {conv_a}


# --------------------------------------------------------- removal, leaving


@pytest.mark.parametrize("remover", ["youth", "counsellor"])
async def test_removed_liaison_is_told_and_receives_nothing_more(
        live_server: LiveServer, remover: str) -> None:
    emitted = spy_emits(live_server)
    youth, counsellor, conv = await live_server.chat()
    liaison = await live_server.liaison()
    await _seat(youth, counsellor, liaison, conv)
    member = liaison.conversations[conv].member
    await youth.send_text(conv, "while-three")
    assert (await liaison.next_message(5)).text == "while-three"
    await _next_of(counsellor, "msg")

    by = youth if remover == "youth" else counsellor
    await by.remove_member(conv, member)

    await liaison.wait_for(lambda: liaison.conversations[conv].state == "ended", 5)
    assert liaison.conversations[conv].ended_reason == "removed"
    for client in (youth, counsellor):
        await client.wait_for(lambda c=client: c.conversations[conv].epoch == 3, 5)  # type: ignore[misc]
        assert member not in client.conversations[conv].roster.members
    sent_before = len(_boxes_to(emitted, "/liaison"))
    await _exchange(youth, counsellor, conv, "after-removal")
    await asyncio.sleep(0.2)
    assert len(_boxes_to(emitted, "/liaison")) == sent_before == 1
    assert liaison.inbox.empty() and liaison.undecryptable == 0
    with pytest.raises(CallFailed):
        await liaison.send_text(conv, "still here?")
    actions = [e.action async for e in live_server.ctx.store.iter_audit()]
    assert "member_removed" in actions and "liaison_joined" in actions


async def test_liaison_can_leave(live_server: LiveServer) -> None:
    youth, counsellor, conv = await live_server.chat()
    liaison = await live_server.liaison()
    await _seat(youth, counsellor, liaison, conv, "health")
    await liaison.leave(conversation=conv)
    assert liaison.conversations[conv].ended_reason == "left"
    await youth.wait_for(lambda: youth.conversations[conv].epoch == 3, 5)
    await _exchange(youth, counsellor, conv, "two-again")


async def test_liaison_resumes_after_a_dropped_transport(live_server: LiveServer) -> None:
    youth, counsellor, conv = await live_server.chat()
    liaison = await live_server.liaison()
    await _seat(youth, counsellor, liaison, conv)
    await liaison.disconnect()
    await youth.send_text(conv, "while-you-were-away")
    await _next_of(counsellor, "msg")

    await liaison.connect(live_server.url, "/liaison")
    resumed = await liaison.resume(conv)

    assert (resumed["role"], resumed["epoch"]) == ("liaison", 2)
    assert (await liaison.next_message(5)).text == "while-you-were-away"
    await liaison.send_text(conv, "back")
    assert (await _next_of(youth, "msg")).text == "back"


async def test_counsellor_refuses_a_request_no_invite_of_ours_explains(
        live_server: LiveServer) -> None:
    """A join_request the server made up (no MAC from any of our secrets)."""
    youth, counsellor, conv = await live_server.chat()
    await counsellor.invite_create(conv, "police")
    assert live_server.ctx.sio is not None
    await live_server.ctx.sio.emit(
        "join_request", {"conversation": conv, "request": "ab" * 16, "role": "police",
                         "kx_pk": b64e(e2e.KxKeyPair.generate().public_key),
                         "mac": b64e(bytes(32))},
        to=counsellor._sio.get_sid("/staff") if counsellor._sio else None, namespace="/staff")
    await eventually(lambda: "ab" * 16 in counsellor.join_requests.get(conv, {}))
    assert not counsellor.join_requests[conv]["ab" * 16].verified
    with pytest.raises(RefusedLocally) as refused:
        await counsellor.admit(conv, "ab" * 16, True)
    assert refused.value.reason == "unverified_request"
    assert youth.intros == {}  # nothing was introduced


# ------------------------------------------------------- known answers


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_invite_vectors_match_an_independent_blake2b() -> None:
    """tests/data/e2e_vectors.json "invites": recomputed with hashlib (not the
    libsodium binding e2e.py uses), then checked against e2e.py."""
    vectors = json.loads((REPO_ROOT / "tests" / "data" / "e2e_vectors.json").read_text("utf-8"))
    assert vectors["invites"] and vectors["invite_negative"]
    for case in vectors["invites"]:
        secret, conv = _unb64(case["secret"]), bytes.fromhex(case["conversation"])
        kx_pk, counsellor_pk = _unb64(case["kx_pk"]), _unb64(case["counsellor_pk"])
        inv_id = hashlib.blake2b(b"cv1-invite-id", key=secret, digest_size=32).digest()
        mac_key = hashlib.blake2b(b"cv1-invite-mac", key=secret, digest_size=32).digest()
        mac = hashlib.blake2b(conv + kx_pk, key=mac_key, digest_size=32).digest()
        compare_in = b"cv1-invite-compare" + inv_id + conv + kx_pk + counsellor_pk
        digest = hashlib.blake2b(compare_in, key=mac_key, digest_size=32).digest()
        code = f"{int.from_bytes(digest[:4], 'big') % 1_000_000:06d}"
        assert (b64e(inv_id), b64e(mac_key), b64e(mac)) == (
            case["invite_id"], case["mac_key"], case["mac"])
        assert _unb64(case["mac_input"]) == conv + kx_pk
        assert _unb64(case["comparison_input"]) == compare_in
        assert code == case["comparison_code"]
        assert e2e.invite_id(secret) == inv_id and e2e.invite_mac_key(secret) == mac_key
        assert e2e.invite_mac(mac_key, conv, kx_pk) == mac
        assert e2e.verify_invite_mac(mac_key, conv, kx_pk, mac)
        assert e2e.comparison_code(mac_key, inv_id, conv, kx_pk, counsellor_pk) == code
    for bad in vectors["invite_negative"]:
        assert not e2e.verify_invite_mac(_unb64(bad["mac_key"]),
                                         bytes.fromhex(bad["conversation"]),
                                         _unb64(bad["kx_pk"]), _unb64(bad["mac"])), bad["name"]
    key = _unb64(vectors["invites"][0]["mac_key"])
    conv = bytes.fromhex(vectors["invites"][0]["conversation"])
    pk = _unb64(vectors["invites"][0]["kx_pk"])
    assert not e2e.verify_invite_mac(key, conv, pk, b"short")  # wrong size: simply False
