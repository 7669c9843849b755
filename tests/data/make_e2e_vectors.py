"""Generate tests/data/e2e_vectors.json: known-answer vectors for the E2E layer.

    .venv/bin/python tests/data/make_e2e_vectors.py          # (re)write the file
    .venv/bin/python tests/data/make_e2e_vectors.py --check  # exit 1 if stale

Everything is deterministic (fixed seeds, ids, nonces, plaintexts), so the
output reproduces byte for byte; tests/unit/test_e2e.py checks that, and the
browser bundle (@noble, web_client/src/lib/e2e.js) is checked against the same bytes.

Format (version 1). Encodings are those of docs/protocol.md: conversation and
member ids are lowercase hex; every other byte string is base64url without
padding (``sodium.to_base64`` default, ``URLSAFE_NO_PADDING``). Integers are
JSON numbers (all below 2**53).

- ``conversation``: hex id shared by every roster and box.
- ``keypairs``: ``{name: {seed, pk, sk}}`` from ``crypto_kx_seed_keypair(seed)``.
- ``sessions``: one entry per pair ``{a, b, kx_client, keys: {a: {rx, tx}, b: {rx, tx}}}``;
  ``kx_client`` names the member with the byte-wise smaller ``pk``;
  ``keys[a].tx == keys[b].rx``.
- ``rosters``: ``{name: {epoch, members: [{member, role, kx_pk}], hash_input,
  roster_hash}}``. ``members`` is deliberately NOT in hash order: sort by the
  raw member id yourself. ``hash_input`` is the exact BLAKE2b-256 input.
- ``padding``: ``[{block, input, padded}]`` for ``sodium_pad`` edge lengths.
- ``boxes``: ``[{name, roster, sender, recipient, seq, plaintext,
  plaintext_json, padded, ad, key, nonce, ct, wire}]``. ``roster`` names the
  roster both sides hold; ``sender``/``recipient`` name key pairs; ``key`` is
  the sender's ``tx`` (= recipient's ``rx``); ``plaintext_json`` is the exact
  UTF-8 text that was padded (what ``JSON.stringify(plaintext)`` gives);
  ``ct`` includes the 16-byte tag (libsodium "combined" form); ``wire`` is the
  ``box`` event the server would deliver.
- ``negative``: ``[{name, based_on, why, key, ad, nonce, ct}]``: opening with
  exactly these inputs MUST fail authentication.
- ``invites``: ``[{name, secret, invite_id, mac_key, conversation,
  liaison, kx_pk, mac_input, mac, counsellor, counsellor_pk, comparison_input,
  comparison_code}]``: the liaison-invite derivations (keyed BLAKE2b-256,
  libsodium ``crypto_generichash(32, message, key)``). ``liaison`` and
  ``counsellor`` name key pairs.
- ``invite_negative``: ``[{name, why, mac_key, conversation, kx_pk, mac}]``:
  verifying ``mac`` for exactly these inputs MUST fail.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from chatserver.crypto import e2e

OUT = Path(__file__).with_name("e2e_vectors.json")
LABEL = b"chatserver e2e vectors v1: "

CONVERSATION = bytes.fromhex("c0ffee00112233445566778899aabbcc")
# Ids chosen so that id order, role order and key order all differ.
IDS = {
    "youth": bytes.fromhex("f3a1000000000000000000000000000a"),
    "counsellor": bytes.fromhex("1c2d000000000000000000000000000b"),
    "liaison": bytes.fromhex("8a9b000000000000000000000000000c"),
    "hidden": bytes.fromhex("55aa000000000000000000000000000d"),
}
ROLES = {"youth": "youth", "counsellor": "counsellor", "liaison": "liaison",
         "hidden": "counsellor"}
SENT_AT = 1_700_000_000_000  # ms; above 2**32 on purpose
LONG_TEXT = ("Jag vet inte vem jag kan prata med. Min familj bestämmer allt, "
             "och jag får inte träffa mina vänner efter skolan. ") * 3


def _fixed(name: str, size: int) -> bytes:
    return hashlib.blake2b(LABEL + name.encode(), digest_size=size).digest()


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _roster(names: list[str], epoch: int, keys: dict[str, e2e.KxKeyPair]) -> dict[str, Any]:
    members = [e2e.Member(IDS[n], ROLES[n], keys[n].public_key) for n in names]
    return {
        "epoch": epoch,
        "members": [{"member": m.member_id.hex(), "role": m.role, "kx_pk": b64(m.kx_pk)}
                    for m in members],
        "hash_input": b64(e2e.roster_hash_input(CONVERSATION, epoch, members)),
        "roster_hash": b64(e2e.roster_hash(CONVERSATION, epoch, members)),
        # Raw values for building the boxes; dropped before writing.
        "_members": members,
        "_hash": e2e.roster_hash(CONVERSATION, epoch, members),
    }


def _flip(raw: bytes, index: int) -> bytes:
    out = bytearray(raw)
    out[index] ^= 0x01
    return bytes(out)


def build_vectors() -> dict[str, Any]:
    names = ["youth", "counsellor", "liaison", "hidden"]
    keys = {n: e2e.KxKeyPair.from_seed(_fixed("seed/" + n, 32)) for n in names}

    sessions: list[dict[str, Any]] = []
    pair_keys: dict[tuple[str, str], e2e.SessionKeys] = {}
    for a, b in [("youth", "counsellor"), ("youth", "liaison"), ("counsellor", "liaison")]:
        ka = e2e.session_keys(keys[a], keys[b].public_key)
        kb = e2e.session_keys(keys[b], keys[a].public_key)
        pair_keys[(a, b)], pair_keys[(b, a)] = ka, kb
        client = a if keys[a].public_key < keys[b].public_key else b
        sessions.append({
            "a": a, "b": b, "kx_client": client,
            "keys": {a: {"rx": b64(ka.rx), "tx": b64(ka.tx)},
                     b: {"rx": b64(kb.rx), "tx": b64(kb.tx)}},
        })

    rosters = {
        "two": _roster(["youth", "counsellor"], 1, keys),
        # An epoch whose four bytes differ catches byte-order mistakes.
        "three": _roster(["youth", "counsellor", "liaison"], 0x01020304, keys),
        # What a lying server would show the counsellor at epoch 1: an extra member.
        "two_plus_hidden": _roster(["youth", "counsellor", "hidden"], 1, keys),
    }

    box_specs = [
        ("youth_to_counsellor", "two", "youth", "counsellor", 1,
         "Hej! Jag behöver prata med någon. 🙂"),
        ("counsellor_to_youth", "two", "counsellor", "youth", 2**32 + 7,
         'Hej, jag heter Sara. Du är trygg här.\n"Citat" och \\ backslash\ttab'),
        ("liaison_to_youth_long", "three", "liaison", "youth", 3,
         "مرحبا، أنا هنا للمساعدة. " + LONG_TEXT),
    ]
    boxes: list[dict[str, Any]] = []
    for name, rname, sender, recipient, seq, text in box_specs:
        roster = rosters[rname]
        plaintext = {"type": "msg", "text": text, "sent_at": SENT_AT}
        ad = e2e.associated_data(CONVERSATION, roster["epoch"], roster["_hash"],
                                 keys[sender].public_key, keys[recipient].public_key, seq)
        key = pair_keys[(sender, recipient)].tx
        nonce, ct = e2e._seal_with_nonce(key, ad, plaintext, _fixed("nonce/" + name, 24))
        encoded = e2e.encode_plaintext(plaintext)
        boxes.append({
            "name": name, "roster": rname, "sender": sender, "recipient": recipient,
            "seq": seq, "plaintext": plaintext, "plaintext_json": encoded.decode("utf-8"),
            "padded": b64(e2e.pad(encoded)), "ad": b64(ad), "key": b64(key),
            "nonce": b64(nonce), "ct": b64(ct),
            "wire": {"conversation": CONVERSATION.hex(), "from": IDS[sender].hex(),
                     "to": IDS[recipient].hex(), "epoch": roster["epoch"], "seq": seq,
                     "nonce": b64(nonce), "ct": b64(ct)},
            "_raw": (key, ad, nonce, ct),
        })

    base = boxes[0]  # youth → counsellor, roster "two"
    key, ad, nonce, ct = base["_raw"]
    two = rosters["two"]
    hidden_view = rosters["two_plus_hidden"]
    epoch_view = e2e.roster_hash(CONVERSATION, two["epoch"] + 1, two["_members"])

    def _ad(roster_hash: bytes, epoch: int = two["epoch"], seq: int = base["seq"],
            sender: str = "youth", recipient: str = "counsellor") -> bytes:
        return e2e.associated_data(CONVERSATION, epoch, roster_hash,
                                   keys[sender].public_key, keys[recipient].public_key, seq)

    negatives = [
        ("tampered_ct", "one bit of the first ciphertext byte flipped",
         key, ad, nonce, _flip(ct, 0)),
        ("tampered_tag", "one bit of the last tag byte flipped",
         key, ad, nonce, _flip(ct, len(ct) - 1)),
        ("tampered_nonce", "one bit of the nonce flipped", key, ad, _flip(nonce, 0), ct),
        ("wrong_ad_byte", "one bit of the AD's seq field flipped",
         key, _flip(ad, len(ad) - 1), nonce, ct),
        ("wrong_epoch", "receiver assumes epoch + 1 (roster hash recomputed for it)",
         key, _ad(epoch_view, epoch=two["epoch"] + 1), nonce, ct),
        ("wrong_roster", "receiver's roster view has an extra hidden member",
         key, _ad(hidden_view["_hash"]), nonce, ct),
        ("wrong_recipient_key", "opened with the liaison's rx key from the youth",
         pair_keys[("liaison", "youth")].rx, ad, nonce, ct),
        ("reflected_key", "opened with the counsellor's own tx key (direction swapped)",
         pair_keys[("counsellor", "youth")].tx, ad, nonce, ct),
        ("wrong_recipient_pk", "AD names the liaison as recipient",
         key, _ad(two["_hash"], recipient="liaison"), nonce, ct),
    ]

    padding = []
    for length in (0, 1, 255, 256, 257):
        raw = bytes(range(256))[:length] if length <= 256 else bytes(length)
        padding.append({"block": e2e.PAD_BLOCK, "input": b64(raw),
                        "padded": b64(e2e.pad(raw))})

    for r in rosters.values():
        del r["_members"], r["_hash"]
    for bx in boxes:
        del bx["_raw"]
    invites, invite_negative = _invite_vectors(keys)
    return {
        "format": "chatserver-e2e-vectors",
        "version": 1,
        "generator": "tests/data/make_e2e_vectors.py",
        "conversation": CONVERSATION.hex(),
        "keypairs": {n: {"seed": b64(_fixed("seed/" + n, 32)), "pk": b64(k.public_key),
                         "sk": b64(k._secret_bytes())} for n, k in keys.items()},
        "sessions": sessions,
        "rosters": rosters,
        "padding": padding,
        "boxes": boxes,
        "negative": [{"name": n, "based_on": base["name"], "why": why, "key": b64(k),
                      "ad": b64(a), "nonce": b64(nn), "ct": b64(c)}
                     for n, why, k, a, nn, c in negatives],
        # Added after version 1's boxes; everything above is unchanged.
        "invites": invites,
        "invite_negative": invite_negative,
    }


OTHER_CONVERSATION = bytes.fromhex("0dd0000000000000000000000000beef")


def _invite_vectors(keys: dict[str, e2e.KxKeyPair]
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Liaison invites (protocol.md, "Liaison namespace"): id, MAC key, MAC and
    the six-digit comparison code, for two invites of one conversation."""
    cases: list[dict[str, Any]] = []
    raw: dict[str, tuple[bytes, bytes]] = {}  # name -> (mac_key, mac)
    for name, liaison, counsellor in (("police", "liaison", "counsellor"),
                                      ("health", "hidden", "counsellor")):
        secret = _fixed("invite/" + name, e2e.INVITE_SECRET_BYTES)
        inv_id = e2e.invite_id(secret)
        mac_key = e2e.invite_mac_key(secret)
        liaison_pk = keys[liaison].public_key
        counsellor_pk = keys[counsellor].public_key
        mac = e2e.invite_mac(mac_key, CONVERSATION, liaison_pk)
        compare_in = e2e.comparison_input(inv_id, CONVERSATION, liaison_pk, counsellor_pk)
        raw[name] = (mac_key, mac)
        cases.append({
            "name": name, "secret": b64(secret),
            "invite_id": b64(inv_id), "mac_key": b64(mac_key),
            "conversation": CONVERSATION.hex(), "liaison": liaison, "kx_pk": b64(liaison_pk),
            "mac_input": b64(CONVERSATION + liaison_pk), "mac": b64(mac),
            "counsellor": counsellor, "counsellor_pk": b64(counsellor_pk),
            "comparison_input": b64(compare_in),
            "comparison_code": e2e.comparison_code(mac_key, inv_id, CONVERSATION, liaison_pk,
                                                   counsellor_pk),
        })
    police_key, police_mac = raw["police"]
    health_key, _ = raw["health"]
    liaison_pk, hidden_pk = keys["liaison"].public_key, keys["hidden"].public_key
    negative = [
        ("other_conversation", "the police MAC checked against another conversation",
         police_key, OTHER_CONVERSATION, liaison_pk, police_mac),
        ("swapped_key", "the police MAC checked against a key the server substituted",
         police_key, CONVERSATION, hidden_pk, police_mac),
        ("other_invite", "the police MAC checked with the health invite's MAC key",
         health_key, CONVERSATION, liaison_pk, police_mac),
        ("flipped_mac", "one bit of the police MAC flipped",
         police_key, CONVERSATION, liaison_pk, _flip(police_mac, 31)),
    ]
    return cases, [{"name": n, "why": why, "mac_key": b64(k), "conversation": c.hex(),
                    "kx_pk": b64(pk), "mac": b64(m)} for n, why, k, c, pk, m in negative]


def render() -> str:
    return json.dumps(build_vectors(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is stale; rerun {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
