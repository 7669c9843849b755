"""The handover on transfer and presence leave nothing behind on the server
side (promise 1): a whole transfer with a sealed history and note, a declined
one, and a youth shown offline and back, against a server process at DEBUG;
then the note, the history, every handover ciphertext and the client address
are searched for in its output, database and temp dir."""

from __future__ import annotations

from pathlib import Path

import pyotp

from chatserver.client.reference import staff_login
from tests.helpers import server_process
from tests.helpers.waiting import eventually
from tests.security.test_server_canary import (
    RecordingClient,
    _assert_absent,
    _server_env,
    _written,
)

NOTE = "CANARY-handover-note-4c1f9e"
HISTORY = "CANARY-handover-history-a07d2b"


def _account(env: dict[str, str], name: str, alias: str) -> tuple[str, str, str]:
    """Made before the server starts, as an operator would."""
    password = f"canary-password-{name}-91ab"  # a canary, not a secret
    return name, password, server_process.add_staff(env, name, password, alias=alias)


async def _counsellor(url: str, account: tuple[str, str, str],
                      seen: list[str]) -> RecordingClient:
    name, password, seed = account
    login = await staff_login(url, name, password, pyotp.TOTP(seed).now())
    seen += [password, seed, login.cookie.split("=", 1)[1], login.csrf]
    client = RecordingClient()
    await client.connect(url, "/staff", headers={"Cookie": login.cookie})
    await client.duty(True)
    await client.register_handover_key()
    return client


async def test_no_handover_or_presence_trace(tmp_path: Path) -> None:
    env, url = _server_env(tmp_path, asyncio_debug=False)
    env["CHAT_PRESENCE_GRACE_SECS"] = "1"
    env["CHAT_GRACE_SECS"] = "60"
    sara, omid = _account(env, "sara", "Sana"), _account(env, "eva", "Omid")
    log_path = tmp_path / "server.log"
    proc = server_process.serve(env, log_path)
    seen: list[str] = []
    try:
        server_process.wait_ready(url, proc, log_path)
        first = await _counsellor(url, sara, seen)
        second = await _counsellor(url, omid, seen)
        youth = RecordingClient()
        await youth.connect(url, "/youth")
        conv = (await youth.start())["conversation"]
        await first.claim(conv)
        await youth.wait_for(lambda: youth.conversations[conv].epoch == 1, 5)
        await youth.send_text(conv, HISTORY)
        await first.next_message(5)

        # Offline and back
        await youth.disconnect()
        await eventually(lambda: first.presence.get(conv, {}).get("online") is False, 10)
        await youth.connect(url, "/youth")
        await youth.resume(conv)
        await eventually(lambda: first.presence.get(conv, {}).get("online") is True, 10)

        colleague = (await first.colleagues())[0]
        body = {"note": NOTE, "items": [{"who": "youth", "text": HISTORY,
                                         "sent_at": 1_700_000_000_000}]}
        # Declined once, then accepted
        await first.transfer(conv, int(colleague["staff"]),
                             handover_to=colleague["handover_pk"], handover_body=body)
        await second.wait_for(lambda: conv in second.transfer_offers, 5)
        await second.transfer_answer(conv, False)
        await first.wait_for(lambda: bool(first.transfer_declines), 5)
        await first.transfer(conv, int(colleague["staff"]),
                             handover_to=colleague["handover_pk"], handover_body=body)
        await second.wait_for(lambda: conv in second.transfer_offers, 5)
        seat = await second.transfer_answer(conv, True)
        assert second.open_handover(conv, seat["handover"])["note"] == NOTE
        await second.end(conv)
        for client in (youth, first, second):
            await client.close()
    finally:
        server_process.stop(proc)

    wire = youth.sent + first.sent + second.sent
    ciphertexts = [s for s in wire if len(s) > 300]
    # the youth's message, and two handovers (each in a call and in the accept reply)
    assert len(set(ciphertexts)) == 3
    canaries = [NOTE, HISTORY, "127.0.0.1", *seen, *ciphertexts, *(c[:40] for c in ciphertexts)]
    files = _written(tmp_path, log_path)
    assert b"DEBUG" in log_path.read_bytes()
    _assert_absent(files, canaries)
