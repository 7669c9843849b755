"""The console as it lives: presence, the decoy hold, honest take next and the
handover on transfer, in real Chromium against a real server process
(docs/design/web-client.md, "The console, live").

- A youth whose page has been gone past presence_grace_secs is listed
  "offline — waiting for them to come back", counted apart, passed over by
  take next, claimed only after the console asks; coming back clears it.
- Take next is disabled, with the reason shown, when nobody listed can be
  taken and at capacity; the count is what the list shows.
- While the youth is on the decoy the console says why and can still send;
  the youth's page holds what arrives and shows it only when they come back.
- A transfer carries the conversation so far and a note, end to end from one
  console to the other; the receiver sees it marked as handed over and the
  youth is told the new counsellor can read what was said.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from chatserver.client.reference import ReferenceClient
from tests.browser.conftest import DESKTOP, PHONE, ChatServer, NeutralSite, require
from tests.browser.helpers import (
    TIMEOUT_MS,
    Wire,
    console_claim_first,
    console_duty_on,
    console_login,
    console_send,
    youth_sees,
    youth_send,
    youth_to_queue,
    youth_wait_chat,
)
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def live_chat(tmp_path_factory: pytest.TempPathFactory, neutral: NeutralSite
              ) -> Iterator[ChatServer]:
    from tests.browser.conftest import DIST
    require((DIST / "index.html").is_file(), "web_client/dist is not built")
    # Offline after 1 s; the place kept 60 s; the decoy kept 2 min.
    server = ChatServer(tmp_path_factory.mktemp("chatserver-live"), neutral.url,
                        {"presence_grace_secs": 1, "grace_secs": 60, "pause_max_secs": 120})
    yield server
    server.stop()


async def ref_youth(server: ChatServer, clients: list[ReferenceClient]
                    ) -> tuple[ReferenceClient, str]:
    youth = ReferenceClient()
    await youth.connect(server.url, "/youth")
    clients.append(youth)
    return youth, str((await youth.start())["conversation"])


def item(conv: str) -> str:
    return f"#queue-list .queue-item[data-conversation='{conv}']"


async def test_presence_and_honest_take_next(browser: Any, live_chat: ChatServer,
                                             clients: list[ReferenceClient]) -> None:
    ctx = await browser.new_context(viewport=DESKTOP)
    try:
        page = await ctx.new_page()
        await console_login(page, live_chat, live_chat.add_staff(alias="Mira"))
        await console_duty_on(page)
        gone, c_gone = await ref_youth(live_chat, clients)
        _here, c_here = await ref_youth(live_chat, clients)
        await page.wait_for_selector(item(c_here), timeout=TIMEOUT_MS)
        assert "2 waiting" in await page.inner_text("#queue-total")

        # The first youth's page goes away: after a second, offline, counted apart
        await gone.disconnect()
        await page.wait_for_selector(f"{item(c_gone)}[data-offline=true] .tag.offline",
                                     timeout=TIMEOUT_MS)
        total = await page.inner_text("#queue-total")
        assert "1 waiting" in total and "1 offline" in total
        assert "waiting for them to come back" in await page.inner_text(item(c_gone))

        # Take next passes them by, then has nobody to take and says so
        await page.click("#take-next")
        await page.wait_for_selector(f"#tab-{c_here}[aria-current=true]", timeout=TIMEOUT_MS)
        await page.wait_for_selector("#take-next[disabled]", timeout=TIMEOUT_MS)
        assert "offline" in await page.inner_text("#take-next-why")
        total = await page.inner_text("#queue-total")
        assert "0 waiting" in total and "1 offline" in total
        assert await page.locator("#queue-list .queue-item").count() == 1

        # Claiming the offline youth asks first; the conversation shows them offline
        await page.click(f"#claim-{c_gone}")
        await page.wait_for_selector(f"#claim-anyway-{c_gone}", timeout=TIMEOUT_MS)
        assert "offline" in await page.inner_text(item(c_gone))
        await page.click(f"#claim-anyway-{c_gone}")
        await page.wait_for_selector(f"#tab-{c_gone} .st[data-state=offline]", timeout=TIMEOUT_MS)
        assert await page.get_attribute("#composer-note", "data-why") == "offline"
        assert "come back" in await page.inner_text("#pane-state")

        # Coming back clears it
        await gone.connect(live_chat.url, "/youth")
        await gone.resume(c_gone)
        await page.wait_for_selector(f"#tab-{c_gone} .st[data-state=active]", timeout=TIMEOUT_MS)
        assert await page.query_selector("#composer-note") is None

        # At capacity (3): take next is disabled and says why, though one waits
        _, c_third = await ref_youth(live_chat, clients)
        await page.wait_for_selector(item(c_third), timeout=TIMEOUT_MS)
        await page.click("#take-next")
        await page.wait_for_selector(f"#tab-{c_third}", timeout=TIMEOUT_MS)
        _, c_fourth = await ref_youth(live_chat, clients)
        await page.wait_for_selector(item(c_fourth), timeout=TIMEOUT_MS)
        await page.wait_for_selector("#take-next[disabled]", timeout=TIMEOUT_MS)
        assert "3 of 3" in await page.inner_text("#take-next-why")
        assert "1 waiting" in await page.inner_text("#queue-total")
        assert await page.get_attribute(f"#claim-{c_fourth}", "disabled") is not None
    finally:
        await ctx.close()


async def test_decoy_hold_and_handover(browser: Any, live_chat: ChatServer) -> None:
    youth_ctx = await browser.new_context(viewport=PHONE, locale="sv-SE")
    first_ctx = await browser.new_context(viewport=DESKTOP)
    second_ctx = await browser.new_context(viewport=DESKTOP)
    try:
        youth = await youth_ctx.new_page()
        wire = Wire()
        wire.attach(youth)
        ali = await first_ctx.new_page()
        eva = await second_ctx.new_page()
        await console_login(ali, live_chat, live_chat.add_staff(alias="Ali"))
        await console_duty_on(ali)
        await youth_to_queue(youth, live_chat)
        conv = await console_claim_first(ali)
        await youth_wait_chat(youth)
        said = f"youth-{secrets.token_hex(4)}"
        await youth_send(youth, said)
        reply = f"ali-{secrets.token_hex(4)}"
        await console_send(ali, conv, reply)
        await youth_sees(youth, reply)

        # The youth hides the chat: the console says so and can still write
        await youth.click("#pause")
        await youth.wait_for_selector("main[data-screen=decoy]", timeout=TIMEOUT_MS)
        await ali.wait_for_selector(f"#tab-{conv} .st[data-state=paused]", timeout=TIMEOUT_MS)
        note = await ali.inner_text("#composer-note")
        assert "hidden the chat" in note and "held" in note
        boxes_before = sum('"box"' in f for f in wire.frames)
        held = f"held-{secrets.token_hex(4)}"
        await console_send(ali, conv, held)
        # The box reached the youth's page, which keeps it off the decoy
        await eventually(lambda: sum('"box"' in f for f in wire.frames) > boxes_before, 10)
        assert await youth.get_attribute("main", "data-screen") == "decoy"
        assert held not in await youth.inner_text("body")
        await youth.click("#decoy-done")
        await youth_sees(youth, held)

        # Transfer with the conversation so far and a note, end to end to Eva
        await console_login(eva, live_chat, live_chat.add_staff(alias="Eva"))
        await console_duty_on(eva)
        if await ali.get_attribute("#tool-transfer", "open") is None:
            await ali.click("#tool-transfer > summary")
        handover_note = f"note-{secrets.token_hex(4)}"
        await ali.fill("#handover-note", handover_note)
        await ali.click("#transfer-list")
        await ali.click("#colleagues button:has-text('Eva')")
        await ali.wait_for_selector("#transfer-state[data-state=offered]", timeout=TIMEOUT_MS)
        await eva.wait_for_selector(f"#offer-{conv} .with-handover", timeout=TIMEOUT_MS)
        await eva.click(f"#offer-{conv} .offer-accept")
        await eva.wait_for_selector(f"#tab-{conv}[aria-current=true]", timeout=TIMEOUT_MS)
        block = await eva.wait_for_selector("#handover", timeout=TIMEOUT_MS)
        text = await block.inner_text()
        assert "Handed over by Ali" in text and handover_note in text
        for line in (said, reply, held):
            assert await eva.query_selector(
                f"#handover li[data-handed-over=true]:has-text('{line}')") is not None
        # The youth is told, end to end, that Eva can read what was said
        await youth.wait_for_selector(
            "#log li:has-text('Eva har tagit över och kan läsa det som sagts tidigare')",
            timeout=TIMEOUT_MS)
        # The note and the history crossed the youth's wire only as ciphertext
        assert not wire.contains(handover_note) and not wire.contains(held)
    finally:
        for c in (youth_ctx, first_ctx, second_ctx):
            await c.close()


async def test_a_killed_youth_page_shows_offline_at_once(browser: Any, live_chat: ChatServer
                                                         ) -> None:
    """A browser that dies sends no `leave`, but its socket closes: the server
    knows at once. The place is kept for grace_secs (60 s here), and the
    console shows the youth offline after presence_grace_secs (1 s), not as
    waiting for the whole grace period."""
    youth_ctx = await browser.new_context(viewport=PHONE)
    staff_ctx = await browser.new_context(viewport=DESKTOP)
    try:
        staff = await staff_ctx.new_page()
        await console_login(staff, live_chat, live_chat.add_staff(alias="Noor"))
        await console_duty_on(staff)
        youth = await youth_ctx.new_page()
        await youth_to_queue(youth, live_chat)
        # This youth's entry is the newest (earlier tests' youths may still wait)
        await staff.wait_for_selector("#queue-list .queue-item", timeout=TIMEOUT_MS)
        conv = await staff.eval_on_selector_all(
            "#queue-list .queue-item",
            """items => items
                .map(i => [Number(i.querySelector('.waited')?.dataset.since) || 0,
                           i.dataset.conversation])
                .sort((a, b) => b[0] - a[0])[0][1]""")
        assert await staff.get_attribute(item(conv), "data-offline") == "false"
        cdp = await youth_ctx.new_cdp_session(youth)
        # The renderer dies without answering: the call is not awaited.
        crash = asyncio.ensure_future(cdp.send("Page.crash"))
        try:
            await staff.wait_for_selector(f"{item(conv)}[data-offline=true]", timeout=TIMEOUT_MS)
            assert "waiting for them to come back" in await staff.inner_text(item(conv))
        finally:
            crash.cancel()
    finally:
        await youth_ctx.close()
        await staff_ctx.close()
