"""The exact built bundle's crypto against PyNaCl, in Chromium.

The youth page is loaded from the real server (same CSP, same SRI'd bundle a
phone gets) and driven through ``window.cv1``: pure functions the bundle
exposes for this purpose, including the page's real send and receive paths
(``cv1.conversation``). Both directions: the bundle reproduces and opens the
PyNaCl known-answer vectors in tests/data/e2e_vectors.json, refuses every
negative vector, and PyNaCl (chatserver.crypto.e2e) opens what the bundle
seals with fresh random keys and nonces. The bundle's crypto is @noble's
(docs/decisions/0010-noble-crypto.md), so the edges where it could differ
from libsodium are checked too: key pairs, low-order and non-canonical peer
keys, strict base64, and a browser without the newest built-ins.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import nacl.bindings
import pytest
import pytest_asyncio

from chatserver.crypto import e2e
from tests.browser.conftest import ChatServer, vectors
from tests.browser.helpers import open_youth

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


# Every X25519 public key libsodium refuses (its has_small_order list: the
# points of order 1, 2, 4 and 8 and the non-canonical encodings p and p + 1);
# each also with the unused top bit set, which X25519 ignores.
P25519 = 2**255 - 19
LOW_ORDER = (0, 1, P25519 - 1, P25519, P25519 + 1,
             325606250916557431795983626356110631294008115727848805560023387167927233504,
             39382357235489614581723060781553021112529911719440698176882885853963445705823)


def u_bytes(u: int, top_bit: bool = False) -> bytes:
    raw = bytearray(u.to_bytes(32, "little"))
    raw[31] |= 0x80 if top_bit else 0
    return bytes(raw)


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
    await reproduce_known_answers(page)


# Built-ins newer than the oldest browsers the build targets (Chrome 80,
# Safari 15.0): the bundle must not need them. The page records what it found.
OLD_BROWSER = """
window.__missing = [];
for (const [owner, name] of [[Object, "hasOwn"], [Uint8Array, "fromHex"],
    [Uint8Array.prototype, "toHex"], [Uint8Array, "fromBase64"],
    [Uint8Array.prototype, "toBase64"], [Array.prototype, "at"]]) {
  if (name in owner) { delete owner[name]; window.__missing.push(name); }
}
"""


async def test_bundle_works_without_newer_built_ins(browser: Any, chat_server: ChatServer
                                                    ) -> None:
    """On a phone a few years old (no Object.hasOwn, no Uint8Array hex and
    base64 helpers) the page loads without an error and its crypto still
    reproduces every known answer."""
    ctx = await browser.new_context()
    await ctx.add_init_script(OLD_BROWSER)
    old = await ctx.new_page()
    errors: list[str] = []
    old.on("pageerror", lambda e: errors.append(str(e)))
    await open_youth(old, chat_server)
    assert "hasOwn" in await old.evaluate("window.__missing")
    assert await old.evaluate("cv1.ready()") is True
    await reproduce_known_answers(old)
    assert errors == []
    await ctx.close()


async def reproduce_known_answers(page: Any) -> None:
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


async def test_bundle_keys_agree_with_libsodium_at_the_edges(page: Any) -> None:
    """Key pairs are libsodium's (public = X25519 base point times the secret),
    fresh each time; every peer key libsodium refuses the bundle refuses, and
    the non-canonical encodings libsodium accepts give the same session keys."""
    pairs = await page.evaluate("[cv1.keypair(), cv1.keypair()]")
    for k in pairs:
        assert nacl.bindings.crypto_scalarmult_base(b64d(k["sk"])) == b64d(k["pk"])
    assert pairs[0]["sk"] != pairs[1]["sk"]
    mine = pairs[0]
    for u in LOW_ORDER:
        for top in (False, True):
            peer = u_bytes(u, top)
            assert not e2e.usable_peer_key(peer), (u, top)
            refused = await page.evaluate(
                "([pk, sk, peer]) => { try { cv1.sessionKeys(pk, sk, peer); return false; } "
                "catch { return true; } }", [mine["pk"], mine["sk"], b64e(peer)])
            assert refused, (u, top)
    as_python = e2e.KxKeyPair(b64d(mine["pk"]), b64d(mine["sk"]))
    other = e2e.KxKeyPair.generate().public_key
    # The same point spelt with the top bit set; the base point as p + 9; p + 2.
    for peer in (u_bytes(int.from_bytes(other, "little"), True),
                 u_bytes(P25519 + 9), u_bytes(P25519 + 2)):
        assert e2e.usable_peer_key(peer)
        want = e2e.session_keys(as_python, peer)
        got = await page.evaluate("([pk, sk, peer]) => cv1.sessionKeys(pk, sk, peer)",
                                  [mine["pk"], mine["sk"], b64e(peer)])
        assert got == {"tx": b64e(want.tx), "rx": b64e(want.rx)}, peer.hex()
    as_python.wipe()


async def test_bundle_base64_is_strict_like_libsodium(page: Any) -> None:
    """base64url without padding, one spelling per byte string: what
    libsodium's from_base64 (URLSAFE_NO_PADDING) accepted, and nothing else."""
    samples = [bytes(range(n)) for n in range(0, 8)] + [bytes([255] * 33), bytes(range(256))]
    texts = [b64e(s) for s in samples]
    assert await page.evaluate("(ts) => ts.map((t) => cv1.base64(t))", texts) == texts
    bad = ["AA==", "AAA=", "A", "AAAAA", "AB", "AAB", "A+A", "A/A", "AA AA", "AA\n", "ÅÄ"]
    refused = await page.evaluate(
        "(ts) => ts.map((t) => { try { cv1.base64(t); return false; } catch { return true; } })",
        bad)
    assert refused == [True] * len(bad)
