"""The exact built bundle's crypto against PyNaCl, in Chromium.

The youth page is loaded from the real server (same CSP, same SRI'd bundle a
phone gets) and driven through ``window.cv1``: pure functions the bundle
exposes for this purpose, including the page's real send and receive paths
(``cv1.conversation``). Both directions: the bundle reproduces and opens the
PyNaCl known-answer vectors in tests/data/e2e_vectors.json, refuses every
negative vector, and PyNaCl (chatserver.crypto.e2e) opens what the bundle
seals with fresh random keys and nonces.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from chatserver.crypto import e2e
from tests.browser.conftest import ChatServer, vectors
from tests.browser.helpers import open_youth

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def page(browser: Any, chat_server: ChatServer) -> AsyncIterator[Any]:
    ctx = await browser.new_context()
    p = await ctx.new_page()
    await open_youth(p, chat_server)
    assert await p.evaluate("cv1.ready()") is True
    yield p
    await ctx.close()


def view_for(v: dict[str, Any], roster_name: str, me: str) -> dict[str, Any]:
    """The page's view of a vector roster as member `me` (a role name)."""
    roster = v["rosters"][roster_name]
    member = next(m for m in roster["members"] if m["kx_pk"] == v["keypairs"][me]["pk"])
    return {"conversation": v["conversation"], "member": member["member"],
            "pk": v["keypairs"][me]["pk"], "sk": v["keypairs"][me]["sk"],
            "epoch": roster["epoch"], "members": roster["members"]}


async def test_bundle_reproduces_every_known_answer(page: Any) -> None:
    v = vectors()
    for s in v["sessions"]:
        for me, peer in ((s["a"], s["b"]), (s["b"], s["a"])):
            keys = await page.evaluate(
                "([pk, sk, peer]) => cv1.sessionKeys(pk, sk, peer)",
                [v["keypairs"][me]["pk"], v["keypairs"][me]["sk"], v["keypairs"][peer]["pk"]])
            assert keys == s["keys"][me], f"session keys of {me} with {peer}"
    for name, r in v["rosters"].items():
        got = await page.evaluate("([m, c, e]) => cv1.rosterHash(m, c, e)",
                                  [r["members"], v["conversation"], r["epoch"]])
        assert got == r["roster_hash"], f"roster hash {name}"
    for p in v["padding"]:
        pad = await page.evaluate("([i, b]) => cv1.pad(i, b)", [p["input"], p["block"]])
        assert pad == p["padded"]
        unpad = await page.evaluate("([i, b]) => cv1.unpad(i, b)", [p["padded"], p["block"]])
        assert unpad == p["input"]
    for box in v["boxes"]:
        roster = v["rosters"][box["roster"]]
        ad = await page.evaluate(
            "([c, e, rh, s, r, q]) => cv1.associatedData(c, e, rh, s, r, q)",
            [v["conversation"], roster["epoch"], roster["roster_hash"],
             v["keypairs"][box["sender"]]["pk"], v["keypairs"][box["recipient"]]["pk"],
             box["seq"]])
        assert ad == box["ad"], box["name"]
        padded = await page.evaluate("(o) => cv1.encodePlaintext(o)", box["plaintext"])
        assert padded == box["padded"]
        sealed = await page.evaluate("([p, a, k, n]) => cv1.seal(p, a, k, n)",
                                     [box["padded"], box["ad"], box["key"], box["nonce"]])
        assert sealed == {"nonce": box["nonce"], "ct": box["ct"]}, box["name"]
        opened = await page.evaluate("([c, a, n, k]) => cv1.open(c, a, n, k)",
                                     [box["ct"], box["ad"], box["nonce"], box["key"]])
        assert opened == box["padded"]
        decoded = await page.evaluate("(p) => cv1.decodePlaintext(p)", box["padded"])
        assert decoded == box["plaintext"]


async def test_page_receive_path_opens_pynacl_vectors(page: Any) -> None:
    """The page's own openBox (roster view, AD, keys, seq) on the wire events."""
    v = vectors()
    for box in v["boxes"]:
        view = view_for(v, box["roster"], box["recipient"])
        # A newcomer's view: the sender had sent seq-1 boxes before (no gap).
        sender = box["wire"]["from"]
        view["members"] = [{**m, "alias": "", "seq": box["seq"] - 1 if m["member"] == sender else 0}
                           for m in view["members"]]
        [result] = await page.evaluate("([view, b]) => cv1.conversation.open(view, b)",
                                       [view, [box["wire"]]])
        assert result["kind"] == "msg", box["name"]
        assert result["text"] == box["plaintext"]["text"]
        assert result["sentAt"] == box["plaintext"]["sent_at"]
        assert result["gap"] is False


async def test_page_holds_a_box_until_its_roster_arrives(page: Any) -> None:
    """Boxes re-sent during a resume may come before the ack that carries the
    roster of their epoch: the page holds them, then opens them."""
    v = vectors()
    box = next(b for b in v["boxes"] if b["roster"] == "three")
    view = view_for(v, "two", box["recipient"])
    view["members"] = [{**m, "alias": "", "seq": 0} for m in view["members"]]
    after = v["rosters"]["three"]
    sender = box["wire"]["from"]
    view["after"] = {"state": "active", "epoch": after["epoch"], "members": [
        {**m, "alias": "", "seq": box["seq"] - 1 if m["member"] == sender else 0}
        for m in after["members"]]}
    held, opened = await page.evaluate("([view, b]) => cv1.conversation.open(view, b)",
                                       [view, [box["wire"]]])
    assert held["kind"] == "held"
    assert opened["kind"] == "msg" and opened["text"] == box["plaintext"]["text"]


async def test_page_refuses_negative_vectors_and_replays(page: Any) -> None:
    v = vectors()
    for neg in v["negative"]:
        refused = await page.evaluate(
            "([c, a, n, k]) => { try { cv1.open(c, a, n, k); return false; } "
            "catch { return true; } }",
            [neg["ct"], neg["ad"], neg["nonce"], neg["key"]])
        assert refused, neg["name"]
    # Through the receive path: tampered → "bad" (never text), replay dropped,
    # a skipped seq flagged as a gap, a lying roster (hidden member) → "bad".
    base = next(b for b in v["boxes"] if b["name"] == "youth_to_counsellor")
    view = view_for(v, "two", "counsellor")
    view["members"] = [{**m, "alias": "", "seq": 0} for m in view["members"]]
    ct = b64d(base["wire"]["ct"])
    tampered = {**base["wire"], "ct": b64e(bytes([ct[0] ^ 1]) + ct[1:])}
    results = await page.evaluate("([view, b]) => cv1.conversation.open(view, b)",
                                  [view, [tampered, base["wire"], base["wire"]]])
    assert [r["kind"] for r in results] == ["bad", "msg", "replay"]
    assert results[0].get("text") is None
    lying = view_for(v, "two_plus_hidden", "counsellor")
    lying["members"] = [{**m, "alias": "", "seq": 0} for m in lying["members"]]
    [r] = await page.evaluate("([view, b]) => cv1.conversation.open(view, b)",
                              [lying, [base["wire"]]])
    assert r["kind"] == "bad"
    # seq is bound by the AD: a box relabelled with another seq does not open
    relabelled = {**base["wire"], "seq": 3}
    [r] = await page.evaluate("([view, b]) => cv1.conversation.open(view, b)", [view, [relabelled]])
    assert r["kind"] == "bad"


async def test_pynacl_opens_what_the_bundle_seals(page: Any) -> None:
    """Fresh keys on both sides: the bundle seals through the page's send path
    (random nonce), PyNaCl opens; PyNaCl seals, the page's receive path opens
    and flags the skipped seq as a gap."""
    conversation = "0123456789abcdef0123456789abcdef"
    youth_id, counsellor_id = "aa" * 16, "bb" * 16
    py_keys = e2e.KxKeyPair.generate()
    js_keys = await page.evaluate("cv1.keypair()")
    members = [
        {"member": youth_id, "role": "youth", "alias": "", "kx_pk": js_keys["pk"], "seq": 0},
        {"member": counsellor_id, "role": "counsellor", "alias": "Mira",
         "kx_pk": b64e(py_keys.public_key), "seq": 0},
    ]
    view = {"conversation": conversation, "member": youth_id, "pk": js_keys["pk"],
            "sk": js_keys["sk"], "epoch": 1, "members": members}
    text = "Hej – هل أنت هناك؟ 🙂 " * 20  # multi-byte, more than one pad block
    send = await page.evaluate("([view, t, s, q]) => cv1.conversation.seal(view, t, s, q)",
                               [view, text, 1_700_000_000_123, 1])
    assert send["seq"] == 1 and send["epoch"] == 1 and len(send["boxes"]) == 1
    [box] = send["boxes"]
    assert box["to"] == counsellor_id
    roster = [e2e.Member(bytes.fromhex(m["member"]), m["role"], b64d(m["kx_pk"])) for m in members]
    rh = e2e.roster_hash(bytes.fromhex(conversation), 1, roster)
    keys = e2e.session_keys(py_keys, b64d(js_keys["pk"]))
    ad = e2e.associated_data(bytes.fromhex(conversation), 1, rh, b64d(js_keys["pk"]),
                             py_keys.public_key, 1)
    plain = e2e.open_box(keys.rx, ad, b64d(box["nonce"]), b64d(box["ct"]))
    assert plain == {"type": "msg", "text": text, "sent_at": 1_700_000_000_123}
    assert (len(b64d(box["ct"])) - 16) % 256 == 0

    # And back: PyNaCl seals seq 2 (seq 1 "lost"), the page opens it and sees the gap
    ad2 = e2e.associated_data(bytes.fromhex(conversation), 1, rh, py_keys.public_key,
                              b64d(js_keys["pk"]), 2)
    nonce, ct = e2e.seal_box(keys.tx, ad2, {"type": "msg", "text": "svar från PyNaCl",
                                            "sent_at": 1_700_000_000_999})
    wire = {"conversation": conversation, "from": counsellor_id, "to": youth_id, "epoch": 1,
            "seq": 2, "nonce": b64e(nonce), "ct": b64e(ct)}
    [r] = await page.evaluate("([view, b]) => cv1.conversation.open(view, b)", [view, [wire]])
    assert r == {"kind": "msg", "gap": True, "text": "svar från PyNaCl",
                 "sentAt": 1_700_000_000_999, "seq": 2}
    py_keys.wipe()
