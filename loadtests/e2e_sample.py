"""The PyNaCl sample that runs beside the swarm: a few real conversations
through the reference client (chatserver/client/reference.py), real
``crypto_kx`` keys and XChaCha20-Poly1305 boxes, each message checked to
decrypt to exactly what was sent, in order, once.

    python -m loadtests.e2e_sample PLAN.json   (PLAN: base, origin, accounts, pairs, messages)

Prints one JSON object: conversations, sent, verified, undecryptable, gaps,
replays, mismatched, errors.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import pyotp

from chatserver.client.reference import CallFailed, ReferenceClient, staff_login


async def one_pair(plan: dict[str, Any], account: dict[str, Any], tally: dict[str, Any]) -> None:
    base, origin = plan["base"], plan["origin"]
    login = await staff_login(base, account["username"], account["password"],
                              pyotp.TOTP(account["totp_secret"]).now(), origin=origin)
    staff = ReferenceClient(call_timeout=30)
    youth = ReferenceClient(call_timeout=30)
    try:
        await staff.connect(base, "/staff", headers={"Cookie": login.cookie, "Origin": origin})
        await staff.duty(True)
        await youth.connect(base, "/youth", headers={"Origin": origin})
        conv = ""
        for _ in range(5):  # a swarm counsellor may take "our" youth first
            reply = await youth.start()
            try:
                await staff.claim(reply["conversation"])
                conv = reply["conversation"]
                break
            except CallFailed as exc:
                if exc.code != "already_claimed":
                    raise
                tally["claimed_by_swarm"] += 1
                await youth.close()
                youth = ReferenceClient(call_timeout=30)
                await youth.connect(base, "/youth", headers={"Origin": origin})
        if not conv:
            raise CallFailed("already_claimed")
        await youth.wait_for(lambda: youth.conversations[conv].state == "active", 30)
        tally["conversations"] += 1
        for i in range(plan["messages"]):
            for sender, receiver, who in ((youth, staff, "y"), (staff, youth, "c")):
                text = f"{who}:{i}:{conv[:8]}:" + "å" * (i % 40)
                await sender.send_text(conv, text)
                tally["sent"] += 1
                got = await receiver.next_message(30)
                if got.text == text and got.conversation == conv:
                    tally["verified"] += 1
                else:
                    tally["mismatched"] += 1
            await asyncio.sleep(plan.get("interval_secs", 0.5))
        await staff.end(conv)
    except (CallFailed, TimeoutError, OSError) as exc:
        key = getattr(exc, "code", type(exc).__name__)
        tally["errors"][key] = tally["errors"].get(key, 0) + 1
    finally:
        for c in (youth, staff):
            tally["undecryptable"] += c.undecryptable
            tally["gaps"] += len(c.gaps)
            tally["replays"] += c.replays
            await c.close()


async def main(plan: dict[str, Any]) -> dict[str, Any]:
    tally: dict[str, Any] = {"conversations": 0, "sent": 0, "verified": 0, "mismatched": 0,
                             "undecryptable": 0, "gaps": 0, "replays": 0,
                             "claimed_by_swarm": 0, "errors": {}}
    started = time.monotonic()
    await asyncio.gather(*(one_pair(plan, a, tally) for a in plan["accounts"][:plan["pairs"]]))
    tally["secs"] = round(time.monotonic() - started, 1)
    return tally


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        the_plan = json.load(fh)
    print(json.dumps(asyncio.run(main(the_plan))))
