"""A whole conversation in real Chromium: a youth on a phone-sized page and a
counsellor in the console, in two browser contexts, through the real server.
Every WebSocket frame and HTTP body is recorded; no plaintext may be in them."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest

from tests.browser.conftest import PHONE, ChatServer
from tests.browser.helpers import (
    Wire,
    console_claim_first,
    console_duty_on,
    console_login,
    console_sees,
    console_send,
    console_state,
    youth_sees,
    youth_send,
    youth_to_queue,
    youth_wait_chat,
)
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def test_full_conversation_no_plaintext_on_the_wire(
        browser: Any, chat_server: ChatServer) -> None:
    counsellor = chat_server.add_staff(alias="Mira")
    youth_ctx = await browser.new_context(viewport=PHONE)
    staff_ctx = await browser.new_context()
    wire = Wire()
    try:
        staff = await staff_ctx.new_page()
        youth = await youth_ctx.new_page()
        wire.attach(staff)
        wire.attach(youth)
        errors: list[str] = []
        for p in (staff, youth):
            p.on("pageerror", lambda e: errors.append(str(e)))

        # Given a counsellor on duty and a youth in the queue with a profile
        await console_login(staff, chat_server, counsellor)
        await console_duty_on(staff)
        await youth_to_queue(youth, chat_server, {"language": "sv", "age_band": "16-17",
                                                  "topic": "forced_marriage"})
        assert await youth.text_content("#queue-live .position")

        # The console lists the youth with tags, never content
        item = await staff.wait_for_selector("#queue-list .queue-item")
        tags = await item.inner_text()
        assert "16–17" in tags and "Chat language: Swedish" in tags
        assert "Page language: Swedish" in tags  # the page it was read in

        # When the counsellor claims the conversation
        conv = await console_claim_first(staff)
        await youth_wait_chat(youth)
        # the youth sees the alias, and only the alias
        assert "Mira" in (await youth.text_content("#with") or "")
        assert counsellor.username not in (await youth.content())

        # Then messages flow both ways, several times, with delivery state
        canaries_y = [f"ungdom-{secrets.token_hex(6)}-jag är rädd ✋ {i}" for i in range(3)]
        canaries_c = [f"kurator-{secrets.token_hex(6)}-vi finns här {i}" for i in range(3)]
        for y_text, c_text in zip(canaries_y, canaries_c, strict=True):
            await youth_send(youth, y_text)
            await console_sees(staff, conv, y_text)
            await console_send(staff, conv, c_text)
            await youth_sees(youth, c_text)

        # Typing indicators both ways
        await youth.type("#composer", "skri")
        await staff.wait_for_selector(f"#tab-{conv} .st:has-text('typing')")
        await staff.type("#composer", "hm")
        await youth.wait_for_selector("#typing:has-text('Mira')")

        # Text is text: markup from the other side is shown literally, never parsed
        markup = '<img src=x onerror="document.title=1"><b>fet</b>'
        await console_send(staff, conv, markup)
        await youth_sees(youth, "<b>fet</b>")
        assert await youth.locator("#log img, #log b").count() == 0
        assert await youth.locator("#log li.in .text").last.inner_text() == markup

        # Every input leaves nothing in autofill, the dictionary or spell-check
        for attrs in await youth.eval_on_selector_all(
                "input, textarea, select", "els => els.map(e => [e.getAttribute('autocomplete'), "
                "e.getAttribute('autocorrect'), e.getAttribute('autocapitalize'), "
                "e.getAttribute('spellcheck')])"):
            assert attrs == ["off", "off", "off", "false"], attrs

        # Message order is kept on both sides
        y_log = await youth.locator("#log li.msg .text").all_inner_texts()
        assert [t for t in y_log if t in canaries_y + canaries_c] == [
            t for pair in zip(canaries_y, canaries_c, strict=True) for t in pair]
        assert await youth.locator("#log li.bad").count() == 0

        # The counsellor ends; both sides show it
        await staff.click("#end-conv")
        await staff.click("#end-confirm")  # the end asks first (wrap-up dialog)
        await youth.wait_for_selector("main[data-screen=ended]")
        await eventually(lambda: console_state(staff, conv), 5)
        assert await console_state(staff, conv) == "done"

        # Nothing readable ever crossed the wire (WebSocket frames or HTTP bodies)
        assert wire.frames, "no WebSocket frames were recorded"
        assert any('"box"' in f for f in wire.frames)
        for text in canaries_y + canaries_c:
            for part in (text, text.split("-")[1]):
                assert not wire.contains(part), f"plaintext on the wire: {part!r}"
        assert not errors, errors
    finally:
        await youth_ctx.close()
        await staff_ctx.close()


async def test_queue_position_is_live_and_leaving_the_queue(
        browser: Any, chat_server: ChatServer) -> None:
    staff_ctx = await browser.new_context()
    first_ctx = await browser.new_context(viewport=PHONE)
    second_ctx = await browser.new_context(viewport=PHONE)
    try:
        staff = await staff_ctx.new_page()
        await console_login(staff, chat_server, chat_server.add_staff(alias="Jo"))
        await console_duty_on(staff)
        first, second = await first_ctx.new_page(), await second_ctx.new_page()
        await youth_to_queue(first, chat_server)
        await youth_to_queue(second, chat_server)
        assert "nummer 2" in (await second.inner_text("#queue-live"))
        assert await second.get_attribute("#queue-live", "aria-live") == "polite"

        # The first leaves the queue; the second moves up without reloading
        await first.click("#leave")
        await first.wait_for_selector("main[data-screen=ended]")
        assert "lämnade kön" in await first.inner_text("main")
        await second.wait_for_selector("#queue-live .position:has-text('nummer 1')")
        await staff.wait_for_selector("#queue-total:has-text('1 waiting')")
        # The first can start again on a fresh connection
        await first.click("#again")
        await first.wait_for_selector("main[data-screen=safety]")
    finally:
        for ctx in (staff_ctx, first_ctx, second_ctx):
            await ctx.close()


async def test_youth_page_resumes_after_a_dropped_connection(
        browser: Any, chat_server: ChatServer) -> None:
    """The transport drops mid-chat; socket.io reconnects, the page resumes and
    gets what was sent meanwhile — once each, in order. The half-typed draft
    (also what is typed while offline), the focus and the caret in it survive
    the drop and the reconnect."""
    staff_ctx = await browser.new_context()
    youth_ctx = await browser.new_context(viewport=PHONE)
    sockets: list[Any] = []
    staff_sockets: list[Any] = []

    def tracker(into: list[Any]) -> Any:
        async def track(ws: Any) -> None:
            server = ws.connect_to_server()
            ws.on_message(lambda m: server.send(m))
            server.on_message(lambda m: ws.send(m))
            into.append(ws)
        return track

    try:
        staff = await staff_ctx.new_page()
        await staff.route_web_socket(re.compile(r".*/socket\.io/.*"), tracker(staff_sockets))
        await console_login(staff, chat_server, chat_server.add_staff(alias="Bo"))
        await console_duty_on(staff)
        youth = await youth_ctx.new_page()
        await youth.route_web_socket(re.compile(r".*/socket\.io/.*"), tracker(sockets))
        await youth_to_queue(youth, chat_server)
        conv = await console_claim_first(staff)
        await youth_wait_chat(youth)
        await youth_send(youth, "före avbrottet")
        await console_sees(staff, conv, "före avbrottet")

        # Half a sentence typed, the caret moved back into it by keyboard
        assert await youth.evaluate("document.activeElement.id") == "composer"
        await youth.keyboard.type("halv mening")
        for _ in range(len("mening")):
            await youth.keyboard.press("ArrowLeft")
        caret = "[document.activeElement.id, document.activeElement.selectionStart]"
        assert await youth.evaluate(caret) == ["composer", len("halv ")]

        # The connection drops; the counsellor writes while the youth is away
        await sockets[-1].close()
        await youth.wait_for_selector(".offline")
        # The screen re-rendered ("offline" line) without taking the focus or
        # the caret: the phone's keyboard would otherwise close mid-word.
        assert await youth.evaluate(caret) == ["composer", len("halv ")]
        # Typing goes on while offline (and may meet the reconnect's re-render)
        await youth.keyboard.type("ny ")
        for text in ("under avbrottet 1", "under avbrottet 2"):
            await staff.fill("#composer", text)
            await staff.click("#send")
        await eventually(lambda: len(sockets) >= 2, 10)
        await youth_sees(youth, "under avbrottet 2")
        await youth.wait_for_selector(".offline", state="detached")
        shown = await youth.locator("#log li.in .text").all_inner_texts()
        assert shown == ["under avbrottet 1", "under avbrottet 2"]
        assert await youth.input_value("#composer") == "halv ny mening"
        assert await youth.evaluate(caret) == ["composer", len("halv ny ")]

        # The console too: the counsellor's own connection drops mid-draft
        await staff.click("#composer")
        await staff.keyboard.type("ett utkast")
        await staff_sockets[-1].close()
        await staff.wait_for_selector("p.offline")
        assert await staff.evaluate(caret) == ["composer", len("ett utkast")]
        await eventually(lambda: len(staff_sockets) >= 2, 10)
        await staff.wait_for_selector("p.offline", state="detached")
        assert await staff.input_value("#composer") == "ett utkast"
        assert await staff.evaluate(caret) == ["composer", len("ett utkast")]
        await youth_send(youth, "efter avbrottet")
        await console_sees(staff, conv, "efter avbrottet")
    finally:
        await youth_ctx.close()
        await staff_ctx.close()
