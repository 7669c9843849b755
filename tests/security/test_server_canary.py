"""Server canary (docs/promises.md, promise 1): a full conversation against a server process
with every logger at DEBUG; unique canaries in the plaintext, the ciphertext and
every secret that crosses the wire; afterwards none of them is found in the
process's stdout/stderr, the SQLite files (with -wal/-journal), the data dir or
the server's temp dir — nor is the client's address.

The conversation also issues and redeems a return passphrase and seats a
liaison through an invite: neither the passphrase (in any spelling,
nor two of its words in a row) nor the invite secret, the invite id or the MAC
may be found either. The passphrase's Argon2id lookup key is the row's primary
key and may be in the database; the passphrase itself may not.

A second server at DEBUG meets hostile input: a password typed into the staff
login's username field, a line feed and a carriage return in every query
parameter of the socket.io endpoint and of every HTTP route, and 20 000
malformed socket.io frames over one WebSocket. None of it may be found
anywhere, no line may start with the attacker's text, and the number of lines
is bounded by the log rate limit (chatserver/logs.py)."""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pyotp
from aiohttp import web

from chatserver import logs
from chatserver.client.reference import ReferenceClient, staff_login
from chatserver.crypto import e2e
from chatserver.crypto.tokens import b64e
from chatserver.settings import REPO_ROOT
from chatserver.transport import http as http_routes
from tests.conftest import free_port
from tests.helpers import server_process


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


def _server_env(tmp_path: Path, *, asyncio_debug: bool = True) -> tuple[dict[str, str], str]:
    """The environment of a server process at DEBUG whose data dir and temp
    dir are under ``tmp_path`` (``var``, ``tmp``), and its URL."""
    (tmp_path / "tmp").mkdir()
    port = free_port()
    url = f"http://localhost:{port}"
    env = {**os.environ, "CHAT_CONFIG": str(REPO_ROOT / "config" / "test.toml"),
           "CHAT_DATA_DIR": str(tmp_path / "var"), "CHAT_PORT": str(port),
           "CHAT_PUBLIC_ORIGIN": url, "CHAT_LOG_LEVEL": "DEBUG",
           "TMPDIR": str(tmp_path / "tmp")}
    if asyncio_debug:  # asyncio's own debug lines too
        env["PYTHONASYNCIODEBUG"] = "1"
    return env, url


def _written(tmp_path: Path, log_path: Path) -> list[Path]:
    """Every file the server wrote: its output, its data dir, its temp dir."""
    files = [log_path, *(tmp_path / "var").rglob("*"), *(tmp_path / "tmp").rglob("*")]
    return [f for f in files if f.is_file()]


def _assert_absent(files: list[Path], canaries: list[str]) -> None:
    for f in files:
        blob = f.read_bytes()
        for canary in canaries:
            for encoded in {canary.encode("utf-8"), canary.encode("utf-16-le")}:
                assert encoded not in blob, f"canary found in {f.name}"


async def test_no_canary_anywhere_after_a_full_conversation(tmp_path: Path) -> None:
    env, url = _server_env(tmp_path)
    password = "canary-password-5d1e8b2f"  # a canary, not a secret
    seed = server_process.add_staff(env, "mira", password, alias="Sana")
    log_path = tmp_path / "server.log"
    proc = server_process.serve(env, log_path)
    secrets_seen: list[str] = [password, seed]
    wrong_words = "canary wrong passphrase zebra quokka"
    try:
        server_process.wait_ready(url, proc, log_path)
        code = pyotp.TOTP(seed).now()
        login = await staff_login(url, "mira", password, code)
        secrets_seen += [code, login.cookie.split("=", 1)[1], login.csrf]

        counsellor, youth = RecordingClient(), RecordingClient()
        await counsellor.connect(url, "/staff", headers={"Cookie": login.cookie})
        await counsellor.duty(True)
        await youth.connect(url, "/youth")
        # A Swedish page: the return code's words are Swedish, å/ä/ö and all
        conv = (await youth.start({"gender": "girl", "municipality": "Botkyrka"},
                                  page_language="sv"))["conversation"]
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
        assert youth.return_codes[conv]["language"] == "sv"

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
        server_process.stop(proc)

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

    files = _written(tmp_path, log_path)
    assert any(f.name.startswith("chatserver.sqlite3") for f in files)
    log_text = log_path.read_bytes()
    assert b"DEBUG" in log_text or b"INFO" in log_text, "the server logged nothing at all?"
    _assert_absent(files, canaries)
    for f in files:
        blob = f.read_bytes()
        for raw in binary:
            assert raw not in blob, f"raw invite bytes found in {f.name}"
    # The database keeps no WAL/journal next to it after shutdown.
    assert not [f for f in files if f.name.endswith(("-wal", "-journal", "-shm"))]


# ------------------------------------------------------------------ hostile input

FORGED = "FORGED"  # starts each line an attacker tries to add to the log
MALFORMED_FRAMES = 20_000
# An upper bound on the kinds of line (logger, level, template) the run below
# can make: the server's start and stop, HTTP errors, engine.io's refusals and
# its per-packet lines, socket.io's decode errors. About 30 are seen; the
# bound leaves room for library changes, and is 1/20 of the malformed frames.
MAX_KINDS = 60
_SUMMARY = re.compile(r"suppressed (\d+) similar lines in the \d+ s from \S+: (.*)$")
_COUNTING = re.compile(r" \[similar lines are counted, not written, until \d+ s after the first\]$")


def _routes() -> list[tuple[str, str]]:
    """Every HTTP route the server has: (method, path template)."""
    app = web.Application()
    http_routes.add_routes(app)
    return sorted({(r.method, r.resource.canonical) for r in app.router.routes()
                   if r.resource is not None})


async def test_hostile_input_at_debug_leaves_no_canary_no_forged_line_and_few_lines(
        tmp_path: Path) -> None:
    # asyncio's debug mode makes each frame ~4x slower to handle; the full
    # conversation above runs with it.
    env, url = _server_env(tmp_path, asyncio_debug=False)
    # The frames below go to a session that has joined no namespace; on a
    # loaded machine sending them takes longer than the unjoined sweep's 10 s,
    # which would close the socket before the sync point. What this test is
    # about is the log, not the sweep (tests/unit/test_admission.py has that).
    env["CHAT_HANDSHAKE_JOIN_SECS"] = "600"
    canaries: list[str] = []

    def hostile(tag: str) -> str:
        """A canary, then a line of the attacker's own after LF and after CR.
        Short, with spaces: nothing the address/token redaction would catch."""
        canary = f"canary {tag} {secrets.token_hex(3)}"
        canaries.append(canary)
        return f"{canary}\n{FORGED} lf\r{FORGED} cr"

    log_path = tmp_path / "server.log"
    started = time.monotonic()
    proc = server_process.serve(env, log_path)
    try:
        server_process.wait_ready(url, proc, log_path)
        async with aiohttp.ClientSession() as http:
            # A password typed into the username field (no account needed: the
            # lookup of the unknown name is what a query log would show; shaped
            # like a username, or it would not be looked up), and a username
            # that tries to start a line of its own.
            password = "vinter.promenad-7.sjo"
            canaries.append(password)
            for username in (password, hostile("user")):
                async with http.post(url + "/staff/api/login", headers={"Origin": url},
                                     json={"username": username, "password": "a b c",
                                           "totp": "123456"}) as resp:
                    assert resp.status == 401
            # Every query parameter engine.io reads, by polling (GET and POST)
            for key in ("EIO", "transport", "sid", "j", "t"):
                params = {"EIO": "4", "transport": "polling", key: hostile(f"eio-{key}")}
                async with http.get(url + "/socket.io/", params=params,
                                    headers={"Origin": url}) as resp:
                    assert resp.status in (200, 400)
                async with http.post(url + "/socket.io/", params=params, data="1:6",
                                     headers={"Origin": url}) as resp:
                    assert resp.status in (200, 400)
            # The Origin header engine.io checks (a header cannot hold a line break)
            origin = f"http://{quote(hostile('origin').splitlines()[0])}.example"
            async with http.get(url + "/socket.io/", params={"EIO": "4", "transport": "polling"},
                                headers={"Origin": origin}) as resp:
                assert resp.status == 400
            # Every HTTP route, with a hostile parameter name and value (and path part)
            for method, path in _routes():
                value = hostile(f"route {path}")
                target = path.replace("{name}", quote(value, safe=""))
                async with http.request(method, url + target, params={"q": value, value: "1"},
                                        headers={"Origin": url},
                                        allow_redirects=False) as resp:
                    assert resp.status < 500, (method, path, resp.status)

            # 20 000 malformed socket.io frames from one client, one WebSocket
            ws_url = url.replace("http", "ws") + "/socket.io/"
            async with http.ws_connect(ws_url, headers={"Origin": url}, params={
                    "EIO": "4", "transport": "websocket", "t": hostile("ws-t")}) as ws:
                assert (await ws.receive_str()).startswith("0")  # engine.io OPEN
                frames = [
                    "4x" + hostile("frame-type"),  # not a socket.io packet type
                    "49" + hostile("frame-nine"),  # a packet type that does not exist
                    '42/youth,["' + hostile("frame-json"),  # JSON cut short
                    "42/nowhere," + json.dumps([hostile("frame-ns")]),  # never joined
                    '42/youth,{"' + hostile("frame-dict") + '":1}',  # not an event list
                ]
                for i in range(MALFORMED_FRAMES):
                    await ws.send_str(frames[i % len(frames)])
                # engine.io reads a connection's frames in order: once this
                # namespace join is answered, every frame above has been read.
                await ws.send_str("40/youth,")
                while not (await ws.receive_str()).startswith("40/youth,"):
                    pass
    finally:
        server_process.stop(proc)
    elapsed = time.monotonic() - started

    files = _written(tmp_path, log_path)
    _assert_absent(files, [*canaries, FORGED])
    text = log_path.read_text("utf-8")
    lines = text.splitlines()  # splits on LF, CR and every other line break
    assert not [line for line in lines if line.startswith(FORGED)]

    # The bound, from the rate-limit settings: per kind and per window,
    # LOG_BURST lines and one summary. A kind's windows do not overlap, so a
    # run this long spans at most `windows` of them (one, unless the machine
    # is slow; nothing here limits how long the run may take).
    windows = 1 + int(elapsed // logs.LOG_WINDOW_SECS)
    written: Counter[str] = Counter()
    suppressed: Counter[str] = Counter()
    for line in lines:
        kind = _COUNTING.sub("", line.split(" ", 2)[-1])  # "LEVEL logger: message"
        head, _, message = kind.partition(": ")
        summary = _SUMMARY.match(message)
        if summary:
            suppressed[f"{head}: {summary.group(2)}"] += int(summary.group(1))
        else:
            written[kind] += 1
    assert max(written.values()) <= logs.LOG_BURST * windows
    assert len(written) <= MAX_KINDS
    assert len(lines) <= MAX_KINDS * (logs.LOG_BURST + 1) * windows
    # And nothing was simply lost: every frame was read, and written or counted.
    received = "INFO chatserver.lib: %s: Received packet %s data %s"
    assert written[received] + suppressed[received] >= MALFORMED_FRAMES
