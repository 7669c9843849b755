"""Server canary (DESIGN.md §8): a full conversation against a server process
with every logger at DEBUG; unique canaries in the plaintext, the ciphertext and
every secret that crosses the wire; afterwards none of them is found in the
process's stdout/stderr, the SQLite files (with -wal/-journal), the data dir or
the server's temp dir — nor is the client's address.

The conversation also issues and redeems a return passphrase and seats a
liaison through an invite (issue 4): neither the passphrase (in any spelling,
nor two of its words in a row) nor the invite secret, the invite id or the MAC
may be found either. The passphrase's Argon2id lookup key is the row's primary
key and may be in the database; the passphrase itself may not."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pyotp

from chatserver.client.reference import ReferenceClient, staff_login
from chatserver.crypto import e2e
from chatserver.crypto.tokens import b64e
from chatserver.settings import REPO_ROOT
from tests.conftest import free_port


class RecordingClient(ReferenceClient):
    """Keeps every value this client put on the wire, to look for it later."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    async def call(self, event: str, data: Any = None, *, check: bool = True) -> dict[str, Any]:
        if data:
            self.sent.extend(_strings(data))
        reply = await super().call(event, data, check=check)
        self.sent.extend(_strings(reply))
        return reply


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _passphrase_forms(text: str) -> list[str]:
    """The passphrase as typed or stored in any plausible way, and every two
    of its words in a row (single words are ordinary English and may occur)."""
    parts = text.split()
    forms = []
    for sep in (" ", "-", "", "_", ",", "\n"):
        forms += [sep.join(parts), sep.join(parts).upper(), sep.join(parts).title()]
        forms += [sep.join(pair) for pair in itertools.pairwise(parts)]
    return sorted(set(forms))


async def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "server exited during start-up"
            try:
                async with http.get(url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("server did not become ready")


def _add_staff(env: dict[str, str], name: str, password: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "chatserver", "staff", "add", name, "--role", "counsellor",
         "--alias", "Sana", "--password-stdin"],
        input=(password + "\n").encode(), env=env, capture_output=True, check=True,
        cwd=REPO_ROOT)
    text = out.stdout.decode()
    uri = next(w for w in text.split() if w.startswith("otpauth://"))
    return pyotp.parse_uri(uri).secret  # type: ignore[no-any-return]


async def test_no_canary_anywhere_after_a_full_conversation(tmp_path: Path) -> None:
    data_dir, tmp_dir = tmp_path / "var", tmp_path / "tmp"
    tmp_dir.mkdir()
    port = free_port()
    url = f"http://localhost:{port}"
    env = {**os.environ, "CHAT_CONFIG": str(REPO_ROOT / "config" / "test.toml"),
           "CHAT_DATA_DIR": str(data_dir), "CHAT_PORT": str(port),
           "CHAT_PUBLIC_ORIGIN": url, "CHAT_LOG_LEVEL": "DEBUG", "TMPDIR": str(tmp_dir),
           "PYTHONASYNCIODEBUG": "1"}
    password = "canary-password-5d1e8b2f"  # a canary, not a secret
    seed = _add_staff(env, "mira", password)
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        # Popen returns at once: the server runs beside the test's event loop.
        proc = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "chatserver", "serve"], env=env,
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    secrets_seen: list[str] = [password, seed]
    wrong_words = "canary wrong passphrase zebra quokka"
    try:
        await _wait_ready(url, proc)
        code = pyotp.TOTP(seed).now()
        login = await staff_login(url, "mira", password, code)
        secrets_seen += [code, login.cookie.split("=", 1)[1], login.csrf]

        counsellor, youth = RecordingClient(), RecordingClient()
        await counsellor.connect(url, "/staff", headers={"Cookie": login.cookie})
        await counsellor.duty(True)
        await youth.connect(url, "/youth")
        conv = (await youth.start({"gender": "girl", "municipality": "Botkyrka"}))["conversation"]
        await counsellor.claim(conv)
        await youth.wait_for(lambda: youth.conversations[conv].epoch == 1, 5)

        plain = ["CANARY-plain-youth-a81f3c", "CANARY-plain-counsellor-77be20",
                 "CANARY-ÅÄÖ-عربي-e3c9", "CANARY-plain-liaison-5b02d9",
                 "CANARY-plain-youth-to-three-c81e"]
        await youth.send_text(conv, plain[0])
        await youth.send_text(conv, plain[2])
        await counsellor.next_message(5)
        await counsellor.next_message(5)
        await counsellor.send_text(conv, plain[1])
        await youth.next_message(5)
        await youth.send_typing(conv, True)
        # A dropped transport and a resume, so the resume secret crosses too.
        await youth.disconnect()
        await counsellor.send_text(conv, plain[1] + "-again")
        await youth.connect(url, "/youth")
        await youth.resume(conv)
        await youth.next_message(5)

        # A return passphrase, shown to the youth's page only
        await counsellor.offer_return(conv)
        await youth.wait_for(lambda: conv in youth.return_codes, 5)
        words = str(youth.return_codes[conv]["passphrase"])

        # An invite: created, joined, verified, introduced, admitted, consented
        liaison = RecordingClient()
        await liaison.connect(url, "/liaison")
        invite = await counsellor.invite_create(conv, "police")
        request = (await liaison.join(invite.fragment))["request"]
        await counsellor.wait_for(lambda: request in counsellor.join_requests.get(conv, {}), 5)
        assert counsellor.join_requests[conv][request].verified
        await counsellor.admit(conv, request, True)
        assert (await youth.next_message(5)).type == "intro"
        await youth.wait_for(lambda: request in youth.consent_requests.get(conv, {}), 5)
        await youth.consent(conv, request, True)
        await liaison.wait_for(lambda: conv in liaison.conversations, 5)
        await liaison.send_text(conv, plain[3])
        await youth.next_message(5)
        await counsellor.next_message(5)
        await youth.send_text(conv, plain[4])
        await liaison.next_message(5)
        await counsellor.next_message(5)
        join_mac = e2e.invite_mac(invite.mac_key, bytes.fromhex(conv),
                                  liaison.conversations[conv].keys.public_key)
        assert b64e(join_mac) in liaison.sent  # what the join carried
        await counsellor.end(conv)
        await youth.close()
        await liaison.close()

        # The youth comes back: a wrong try, then the passphrase, respelled
        back = RecordingClient()
        await back.connect(url, "/youth")
        await back.call("start", {"kx_pk": "A" * 43, "passphrase": wrong_words}, check=False)
        returned = await back.start(passphrase="  " + words.upper().replace(" ", "-") + " ")
        assert returned["returning"] == "queued"
        taken = await counsellor.take_next()
        assert taken["conversation"] == returned["conversation"]
        await counsellor.end(returned["conversation"])
        await back.close()
        await counsellor.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise

    wire = youth.sent + counsellor.sent + liaison.sent + back.sent
    ciphertexts = [s for s in wire if len(s) > 300]  # every ct is ≥ 363 base64 chars
    resumes = [c.resume_secret for client in (youth, liaison, back)
               for c in client.conversations.values()]
    # 4 two-party sends, the intro (1 box), 2 three-party sends (2 boxes each)
    assert len(ciphertexts) == 9 and len(resumes) == 3
    canaries = plain + ciphertexts + resumes + secrets_seen + ["127.0.0.1"]
    canaries += [c[:40] for c in ciphertexts]  # a prefix, in case something truncates
    canaries += _passphrase_forms(words) + _passphrase_forms(wrong_words)
    binary = [invite.secret, invite.invite_id, join_mac]  # raw bytes, too
    canaries += [invite.fragment] + [f(raw) for raw in binary for f in (b64e, bytes.hex)]

    files = [log_path, *data_dir.rglob("*"), *tmp_dir.rglob("*")]
    files = [f for f in files if f.is_file()]
    assert any(f.name.startswith("chatserver.sqlite3") for f in files)
    log_text = log_path.read_bytes()
    assert b"DEBUG" in log_text or b"INFO" in log_text, "the server logged nothing at all?"
    for f in files:
        blob = f.read_bytes()
        for canary in canaries:
            for encoded in {canary.encode("utf-8"), canary.encode("utf-16-le")}:
                assert encoded not in blob, f"canary found in {f.name}"
        for raw in binary:
            assert raw not in blob, f"raw invite bytes found in {f.name}"
    # The database keeps no WAL/journal next to it after shutdown.
    assert not [f for f in files if f.name.endswith(("-wal", "-journal", "-shm"))]
