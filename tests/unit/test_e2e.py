"""End-to-end crypto (chatserver/crypto/e2e.py): known-answer vectors, round
trips, negative cases, replay/gap rules, padding and size limits."""

from __future__ import annotations

import base64
import importlib.util
import json
import string
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatserver.crypto import e2e
from chatserver.settings import Settings

DATA = Path(__file__).resolve().parent.parent / "data"
VECTORS: dict[str, Any] = json.loads((DATA / "e2e_vectors.json").read_text(encoding="utf-8"))
CONV = bytes.fromhex("00" * 15 + "01")


def d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_e2e_vectors",
                                                  DATA / "make_e2e_vectors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _members(roster: dict[str, Any]) -> list[e2e.Member]:
    return [e2e.Member(bytes.fromhex(m["member"]), m["role"], d(m["kx_pk"]))
            for m in roster["members"]]


class Party:
    """One member: key pair, id, role."""

    def __init__(self, role: str, n: int) -> None:
        self.keys = e2e.KxKeyPair.generate()
        self.id = bytes([n]) * 16
        self.role = role

    @property
    def member(self) -> e2e.Member:
        return e2e.Member(self.id, self.role, self.keys.public_key)


def _ad(sender: Party, recipient: Party, roster: list[Party], epoch: int = 1,
        seq: int = 1) -> bytes:
    h = e2e.roster_hash(CONV, epoch, [p.member for p in roster])
    return e2e.associated_data(CONV, epoch, h, sender.keys.public_key,
                               recipient.keys.public_key, seq)


def _msg(text: str = "hej") -> dict[str, Any]:
    return {"type": "msg", "text": text, "sent_at": 1_700_000_000_000}


@pytest.fixture
def pair() -> tuple[Party, Party]:
    return Party("youth", 1), Party("counsellor", 2)


# ------------------------------------------------------------ known answers

def test_committed_vectors_are_what_the_generator_writes() -> None:
    assert (DATA / "e2e_vectors.json").read_text(encoding="utf-8") == _generator().render()


def test_vector_keypairs_and_session_keys() -> None:
    for kp in VECTORS["keypairs"].values():
        keys = e2e.KxKeyPair.from_seed(d(kp["seed"]))
        assert keys.public_key == d(kp["pk"])
    for s in VECTORS["sessions"]:
        a, b = s["a"], s["b"]
        ka = e2e.session_keys(e2e.KxKeyPair.from_seed(d(VECTORS["keypairs"][a]["seed"])),
                              d(VECTORS["keypairs"][b]["pk"]))
        assert (ka.rx, ka.tx) == (d(s["keys"][a]["rx"]), d(s["keys"][a]["tx"]))
        assert s["keys"][a]["tx"] == s["keys"][b]["rx"]
        assert s["keys"][a]["rx"] == s["keys"][b]["tx"]
        client = min((a, b), key=lambda n: d(VECTORS["keypairs"][n]["pk"]))
        assert s["kx_client"] == client
    # Both role assignments occur, so a swapped rule cannot pass.
    assert {s["kx_client"] == s["a"] for s in VECTORS["sessions"]} == {True, False}


def test_vector_roster_hashes() -> None:
    conv = bytes.fromhex(VECTORS["conversation"])
    for roster in VECTORS["rosters"].values():
        members = _members(roster)
        assert e2e.roster_hash_input(conv, roster["epoch"], members) == d(roster["hash_input"])
        assert e2e.roster_hash(conv, roster["epoch"], members) == d(roster["roster_hash"])
        # The listed order is not the hash order, and the order does not matter.
        assert [m.member_id for m in members] != sorted(m.member_id for m in members)
        assert e2e.roster_hash(conv, roster["epoch"], members[::-1]) == d(roster["roster_hash"])
    sizes = sorted(len(r["members"]) for r in VECTORS["rosters"].values())
    assert 2 in sizes and 3 in sizes


def test_vector_padding() -> None:
    for case in VECTORS["padding"]:
        assert e2e.pad(d(case["input"]), case["block"]) == d(case["padded"])
        assert e2e.unpad(d(case["padded"]), case["block"]) == d(case["input"])


def test_vector_boxes_reproduce_byte_for_byte() -> None:
    conv = bytes.fromhex(VECTORS["conversation"])
    keys = VECTORS["keypairs"]
    for box in VECTORS["boxes"]:
        roster = VECTORS["rosters"][box["roster"]]
        ad = e2e.associated_data(conv, roster["epoch"], d(roster["roster_hash"]),
                                 d(keys[box["sender"]]["pk"]), d(keys[box["recipient"]]["pk"]),
                                 box["seq"])
        assert ad == d(box["ad"]) and len(ad) == e2e.AD_BYTES and ad[:3] == b"cv1"
        encoded = e2e.encode_plaintext(box["plaintext"])
        assert encoded == box["plaintext_json"].encode("utf-8")
        assert e2e.pad(encoded) == d(box["padded"])
        nonce, ct = e2e._seal_with_nonce(d(box["key"]), ad, box["plaintext"], d(box["nonce"]))
        assert ct == d(box["ct"])
        recipient = e2e.KxKeyPair.from_seed(d(keys[box["recipient"]]["seed"]))
        rx = e2e.session_keys(recipient, d(keys[box["sender"]]["pk"])).rx
        assert e2e.open_box(rx, ad, nonce, ct) == box["plaintext"]
        assert box["wire"]["ct"] == box["ct"] and box["wire"]["seq"] == box["seq"]


@pytest.mark.parametrize("case", VECTORS["negative"], ids=lambda c: c["name"])
def test_vector_negative_cases_fail(case: dict[str, Any]) -> None:
    with pytest.raises(e2e.DecryptFailed):
        e2e.open_box(d(case["key"]), d(case["ad"]), d(case["nonce"]), d(case["ct"]))


# --------------------------------------------------------------- round trips

def test_round_trip_both_directions(pair: tuple[Party, Party]) -> None:
    youth, counsellor = pair
    y = e2e.session_keys(youth.keys, counsellor.keys.public_key)
    c = e2e.session_keys(counsellor.keys, youth.keys.public_key)
    assert y.tx == c.rx and y.rx == c.tx and y.tx != y.rx  # one key per direction
    ad = _ad(youth, counsellor, [youth, counsellor])
    nonce, ct = e2e.seal_box(y.tx, ad, _msg("till dig"))
    assert e2e.open_box(c.rx, ad, nonce, ct)["text"] == "till dig"
    ad = _ad(counsellor, youth, [youth, counsellor], seq=1)
    nonce, ct = e2e.seal_box(c.tx, ad, _msg("tillbaka"))
    assert e2e.open_box(y.rx, ad, nonce, ct)["text"] == "tillbaka"


def test_nonces_are_random(pair: tuple[Party, Party]) -> None:
    youth, counsellor = pair
    tx = e2e.session_keys(youth.keys, counsellor.keys.public_key).tx
    ad = _ad(youth, counsellor, [youth, counsellor])
    seen = {e2e.seal_box(tx, ad, _msg())[0] for _ in range(50)}
    assert len(seen) == 50


# ------------------------------------------------------------ negative cases

def _sealed(pair: tuple[Party, Party]) -> tuple[bytes, bytes, bytes, bytes]:
    youth, counsellor = pair
    tx = e2e.session_keys(youth.keys, counsellor.keys.public_key).tx
    rx = e2e.session_keys(counsellor.keys, youth.keys.public_key).rx
    ad = _ad(youth, counsellor, [youth, counsellor])
    nonce, ct = e2e.seal_box(tx, ad, _msg())
    return rx, ad, nonce, ct


def test_tampered_ciphertext_fails(pair: tuple[Party, Party]) -> None:
    rx, ad, nonce, ct = _sealed(pair)
    for i in (0, len(ct) // 2, len(ct) - 1):
        bad = bytearray(ct)
        bad[i] ^= 0x80
        with pytest.raises(e2e.DecryptFailed):
            e2e.open_box(rx, ad, nonce, bytes(bad))


def test_wrong_ad_fails_for_every_byte(pair: tuple[Party, Party]) -> None:
    rx, ad, nonce, ct = _sealed(pair)
    for i in range(len(ad)):
        bad = bytearray(ad)
        bad[i] ^= 0x01
        with pytest.raises(e2e.DecryptFailed):
            e2e.open_box(rx, bytes(bad), nonce, ct)


def test_wrong_epoch_fails(pair: tuple[Party, Party]) -> None:
    youth, counsellor = pair
    rx, _, nonce, ct = _sealed(pair)
    ad = _ad(youth, counsellor, [youth, counsellor], epoch=2)
    with pytest.raises(e2e.DecryptFailed):
        e2e.open_box(rx, ad, nonce, ct)


def test_roster_with_hidden_member_fails(pair: tuple[Party, Party]) -> None:
    # Given the youth sees {youth, counsellor} but the server shows the
    # counsellor an extra, hidden member at the same epoch,
    youth, counsellor = pair
    hidden = Party("counsellor", 3)
    rx, _, nonce, ct = _sealed(pair)
    # when the counsellor builds the AD from its own view, the box does not open.
    ad = _ad(youth, counsellor, [youth, counsellor, hidden])
    with pytest.raises(e2e.DecryptFailed):
        e2e.open_box(rx, ad, nonce, ct)


def test_wrong_recipient_key_fails(pair: tuple[Party, Party]) -> None:
    youth, _ = pair
    _, ad, nonce, ct = _sealed(pair)
    other = Party("liaison", 4)
    with pytest.raises(e2e.DecryptFailed):
        e2e.open_box(e2e.session_keys(other.keys, youth.keys.public_key).rx, ad, nonce, ct)
    # nor with the sender's own tx key read the other way round
    reflected = e2e.session_keys(pair[1].keys, youth.keys.public_key).tx
    with pytest.raises(e2e.DecryptFailed):
        e2e.open_box(reflected, ad, nonce, ct)


@pytest.mark.parametrize("nonce_len,ct_len", [(23, 272), (24, 271), (24, 256), (24, 300),
                                              (24, 8192 + 16 + 256), (24, 16)])
def test_bad_sizes_fail_as_decrypt_failed(pair: tuple[Party, Party], nonce_len: int,
                                          ct_len: int) -> None:
    rx, ad, _, _ = _sealed(pair)
    with pytest.raises(e2e.DecryptFailed):
        e2e.open_box(rx, ad, bytes(nonce_len), bytes(ct_len))


def test_authentic_but_malformed_plaintext_is_bad_plaintext(
        pair: tuple[Party, Party], monkeypatch: pytest.MonkeyPatch) -> None:
    youth, counsellor = pair
    tx = e2e.session_keys(youth.keys, counsellor.keys.public_key).tx
    rx = e2e.session_keys(counsellor.keys, youth.keys.public_key).rx
    ad = _ad(youth, counsellor, [youth, counsellor])
    for raw in (b"not json", b"[1, 2]", b'{"type": 5}', b'{"type":"msg","text":"x"}',
                b'{"type":"msg","text":"x","sent_at":true}', b"\xff\xfe",
                b'{"type":"msg","text":"x","sent_at":NaN}'):
        monkeypatch.setattr(e2e, "encode_plaintext", lambda obj, raw=raw: raw)
        nonce, ct = e2e.seal_box(tx, ad, _msg())
        with pytest.raises(e2e.BadPlaintext):
            e2e.open_box(rx, ad, nonce, ct)


def test_unpad_refuses_bad_padding() -> None:
    with pytest.raises(e2e.BadPlaintext):
        e2e.unpad(bytes(256))


def test_reserved_types_open_with_extra_keys() -> None:
    assert e2e.decode_plaintext(b'{"type":"e2e_ack","upto":3}') == {"type": "e2e_ack", "upto": 3}


# ----------------------------------------------------------- key exchange

def test_session_keys_refuse_own_key() -> None:
    me = e2e.KxKeyPair.generate()
    with pytest.raises(e2e.BadPeerKey):
        e2e.session_keys(me, me.public_key)


def test_session_keys_refuse_low_order_point() -> None:
    with pytest.raises(e2e.BadPeerKey):
        e2e.session_keys(e2e.KxKeyPair.generate(), bytes(32))


def test_session_keys_check_sizes() -> None:
    with pytest.raises(ValueError):
        e2e.session_keys(e2e.KxKeyPair.generate(), bytes(31))


def test_secrets_stay_out_of_reprs_and_wipe_works() -> None:
    keys = e2e.KxKeyPair.from_seed(bytes(range(32)))
    secret = keys._secret_bytes()
    sk = e2e.session_keys(keys, e2e.KxKeyPair.generate().public_key)
    for text in (repr(keys), str(keys), repr(sk)):
        for value in (secret, sk.rx, sk.tx):
            assert value.hex()[:8] not in text
            assert base64.urlsafe_b64encode(value).decode()[:8] not in text
    keys.wipe()
    assert keys.wiped and "wiped" in repr(keys)
    with pytest.raises(e2e.KeyWiped):
        e2e.session_keys(keys, e2e.KxKeyPair.generate().public_key)


# ------------------------------------------------------- roster hash and AD

def test_roster_hash_depends_on_every_field(pair: tuple[Party, Party]) -> None:
    youth, counsellor = pair
    members = [youth.member, counsellor.member]
    base = e2e.roster_hash(CONV, 1, members)
    other = Party("liaison", 9)
    changed = [
        e2e.roster_hash(CONV, 2, members),
        e2e.roster_hash(bytes(16), 1, members),
        e2e.roster_hash(CONV, 1, [youth.member]),
        e2e.roster_hash(CONV, 1, [youth.member, e2e.Member(counsellor.id, "liaison",
                                                           counsellor.keys.public_key)]),
        e2e.roster_hash(CONV, 1, [youth.member, e2e.Member(counsellor.id, "counsellor",
                                                           other.keys.public_key)]),
    ]
    assert base not in changed and len(set(changed)) == len(changed)


def test_roster_hash_refuses_bad_rosters(pair: tuple[Party, Party]) -> None:
    youth, _ = pair
    with pytest.raises(ValueError):
        e2e.roster_hash(CONV, 1, [youth.member, youth.member])
    with pytest.raises(ValueError):
        e2e.roster_hash(CONV, 1, [])
    with pytest.raises(ValueError):
        e2e.roster_hash(CONV, 2**32, [youth.member])
    with pytest.raises(ValueError):
        e2e.Member(youth.id, "operator", youth.keys.public_key)
    with pytest.raises(ValueError):
        e2e.Member(youth.id[:15], "youth", youth.keys.public_key)


def test_associated_data_layout() -> None:
    ad = e2e.associated_data(CONV, 0x01020304, b"H" * 32, b"S" * 32, b"R" * 32, 2**40 + 5)
    assert ad == (b"cv1" + CONV + bytes([1, 2, 3, 4]) + b"H" * 32 + b"S" * 32 + b"R" * 32
                  + (2**40 + 5).to_bytes(8, "big"))
    for bad in (dict(epoch=-1), dict(epoch=True), dict(seq=2**64), dict(seq=-1)):
        args: dict[str, Any] = dict(conversation_id=CONV, epoch=1, roster_hash=b"H" * 32,
                                    sender_pk=b"S" * 32, recipient_pk=b"R" * 32, seq=1)
        args.update(bad)
        with pytest.raises(ValueError):
            e2e.associated_data(**args)


# ------------------------------------------------------- padding and limits

def test_padding_hides_length_up_to_200_chars(pair: tuple[Party, Party]) -> None:
    youth, counsellor = pair
    tx = e2e.session_keys(youth.keys, counsellor.keys.public_key).tx
    ad = _ad(youth, counsellor, [youth, counsellor])
    sizes = {len(e2e.seal_box(tx, ad, _msg(string.ascii_letters[i % 52] * i))[1])
             for i in range(201)}
    assert sizes == {256 + 16}


def test_oversize_plaintext_refused_before_encryption(
        pair: tuple[Party, Party], monkeypatch: pytest.MonkeyPatch) -> None:
    limit = Settings().max_padded_plaintext_bytes
    assert limit == e2e.MAX_PADDED_BYTES  # the module default follows the setting
    youth, counsellor = pair
    tx = e2e.session_keys(youth.keys, counsellor.keys.public_key).tx
    ad = _ad(youth, counsellor, [youth, counsellor])
    overhead = len(e2e.encode_plaintext(_msg("")))
    # The largest JSON that still fits (padding always adds at least one byte):
    _, ct = e2e.seal_box(tx, ad, _msg("x" * (limit - 1 - overhead)), max_padded_bytes=limit)
    assert len(ct) == limit + 16

    def boom(*args: object) -> bytes:
        raise AssertionError("encryption must not run")

    monkeypatch.setattr(e2e.sodium, "crypto_aead_xchacha20poly1305_ietf_encrypt", boom)
    with pytest.raises(e2e.PlaintextTooLarge):
        e2e.seal_box(tx, ad, _msg("x" * (limit - overhead)), max_padded_bytes=limit)
    with pytest.raises(e2e.PlaintextTooLarge):
        e2e.seal_box(tx, ad, _msg("x" * 300), max_padded_bytes=256)


def test_plaintext_must_encode() -> None:
    with pytest.raises(e2e.BadPlaintext):
        e2e.encode_plaintext(_msg("\ud800"))  # a lone surrogate has no UTF-8 form
    with pytest.raises(ValueError):
        e2e.encode_plaintext({"text": "no type"})


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=2000))
def test_random_text_round_trips(text: str) -> None:
    a, b = e2e.KxKeyPair.from_seed(bytes(32)), e2e.KxKeyPair.from_seed(bytes([1]) * 32)
    tx = e2e.session_keys(a, b.public_key).tx
    rx = e2e.session_keys(b, a.public_key).rx
    ad = e2e.associated_data(CONV, 3, bytes(32), a.public_key, b.public_key, 9)
    try:
        nonce, ct = e2e.seal_box(tx, ad, _msg(text))
    except e2e.PlaintextTooLarge:
        # e.g. 2000 control characters, each escaped as \u00XX in the JSON
        assert len(e2e.encode_plaintext(_msg(text))) >= e2e.MAX_PADDED_BYTES
        return
    except e2e.BadPlaintext:
        assert any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)  # surrogates only
        return
    assert (len(ct) - 16) % 256 == 0
    assert e2e.open_box(rx, ad, nonce, ct) == _msg(text)


# ------------------------------------------------------- replay and gaps

def test_receive_state_ok_replay_gap() -> None:
    state = e2e.ReceiveState()
    assert state.check("a", 1) == e2e.SeqVerdict("ok")
    state.accept("a", 1)
    assert state.check("a", 1).kind == "replay"
    assert state.check("a", 0).kind == "replay"
    assert state.check("a", 2).kind == "ok"
    gap = state.check("a", 5)
    assert gap.kind == "gap" and gap.missing == (2, 4)
    state.accept("a", 5)  # a gap is accepted and reported
    assert state.check("a", 3).kind == "replay"  # late arrivals behind it are dropped
    assert state.check("b", 1).kind == "ok"  # per sender
    with pytest.raises(ValueError):
        state.accept("a", 5)


def test_receive_state_from_roster_and_learn() -> None:
    # Given a newcomer whose roster says the youth already sent 7 messages,
    state = e2e.ReceiveState.from_roster([{"member": "y", "seq": 7}, {"member": "c", "seq": 0}])
    # then 8 is next, and nothing before it is shown.
    assert state.check("y", 8).kind == "ok"
    assert state.check("y", 7).kind == "replay"
    assert state.check("c", 1).kind == "ok"
    # A later roster does not move a known sender (boxes may still be in flight),
    state.learn("y", 12)
    assert state.check("y", 8).kind == "ok"
    # but introduces a new one.
    state.learn("l", 4)
    assert state.check("l", 5).kind == "ok"
