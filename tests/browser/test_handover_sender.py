"""Who handed a conversation over is the server's word, not the box's
(docs/security-design.md, "Handover on transfer"), in real Chromium against
a real server process.

The sealed handover carries a `from_alias` the sending console writes itself;
a colleague can write any name there. The receiving console names the sender
the offer named (the server checked the sending connection), so a handover
cannot pose as coming from another colleague. The history and the note still
open and show.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest

from chatserver.client.reference import ReferenceClient, staff_login
from tests.browser.conftest import DESKTOP, ChatServer
from tests.browser.helpers import TIMEOUT_MS, console_duty_on, console_login
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def test_the_heading_names_the_offering_colleague_not_the_boxs_claim(
        browser: Any, chat_server: ChatServer, clients: list[ReferenceClient]) -> None:
    ctx = await browser.new_context(viewport=DESKTOP)
    try:
        eva = await ctx.new_page()
        await console_login(eva, chat_server, chat_server.add_staff(alias="Eva"))
        await console_duty_on(eva)

        youth = ReferenceClient()
        await youth.connect(chat_server.url, "/youth")
        clients.append(youth)
        conv = str((await youth.start())["conversation"])

        account = chat_server.add_staff(alias="Malte")
        login = await staff_login(chat_server.url, account.username, account.password,
                                  await account.code())
        malte = ReferenceClient()
        await malte.connect(chat_server.url, "/staff", headers={"Cookie": login.cookie})
        clients.append(malte)
        await malte.duty(True)
        await malte.register_handover_key()
        await malte.claim(conv)

        found: list[dict[str, Any]] = []

        async def eva_has_a_key() -> bool:
            found[:] = [c for c in await malte.colleagues()
                        if c["alias"] == "Eva" and c["handover_pk"]]
            return bool(found)

        await eventually(eva_has_a_key, 10)
        note = f"note-{secrets.token_hex(4)}"
        line = f"line-{secrets.token_hex(4)}"
        now = int(time.time() * 1000)
        await malte.transfer(conv, found[0]["staff"], handover_to=found[0]["handover_pk"],
                             handover_body={
                                 "note": note, "omitted": 0, "sent_at": now,
                                 "items": [{"who": "youth", "alias": "", "text": line,
                                            "sent_at": now}],
                                 "from_alias": "Sana",  # a colleague who sent nothing
                             })
        await eva.wait_for_selector(f"#offer-{conv} .with-handover", timeout=TIMEOUT_MS)
        await eva.click(f"#offer-{conv} .offer-accept")
        block = await eva.wait_for_selector("#handover", timeout=TIMEOUT_MS)
        heading = await eva.inner_text("#handover-h")
        assert heading == "Handed over by Malte"
        text = await block.inner_text()
        assert "Sana" not in text
        assert note in text and line in text
    finally:
        await ctx.close()
