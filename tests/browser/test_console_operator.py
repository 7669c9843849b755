"""The counsellor console and the operator view against youths played by the
Python reference client (PyNaCl): cross-implementation E2E through the real
server, several conversations at once with unread markers, every state shown
plainly, live operator numbers without reload — and the youth page acting
safely when the server lies (a dropped, a tampered and a replayed box).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chatserver.client.reference import ReferenceClient, staff_login
from tests.browser.conftest import DESKTOP, PHONE, ChatServer, StaffAccount
from tests.browser.helpers import (
    console_duty_on,
    console_login,
    console_sees,
    console_send,
    open_youth,
    youth_to_queue,
    youth_wait_chat,
)
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def ref_youth(server: ChatServer, clients: list[ReferenceClient],
                    profile: dict[str, Any] | None = None) -> tuple[ReferenceClient, str]:
    youth = ReferenceClient()
    await youth.connect(server.url, "/youth")
    clients.append(youth)
    reply = await youth.start(profile)
    return youth, str(reply["conversation"])


async def ref_counsellor(server: ChatServer, clients: list[ReferenceClient],
                         account: StaffAccount) -> ReferenceClient:
    login = await staff_login(server.url, account.username, account.password,
                              await account.code())
    staff = ReferenceClient()
    await staff.connect(server.url, "/staff", headers={"Cookie": login.cookie})
    clients.append(staff)
    await staff.duty(True)
    return staff


async def _state(page: Any, conv: str, want: str) -> bool:
    return await page.get_attribute(f"#tab-{conv} .st", "data-state") == want


async def test_console_several_conversations_unread_and_every_state(
        browser: Any, chat_server: ChatServer, clients: list[ReferenceClient]) -> None:
    ctx = await browser.new_context(viewport=DESKTOP)
    try:
        page = await ctx.new_page()
        await console_login(page, chat_server, chat_server.add_staff(alias="Sara"))
        await console_duty_on(page)
        y1, c1 = await ref_youth(chat_server, clients, {"language": "ar", "urgent": True})
        y2, c2 = await ref_youth(chat_server, clients, {"topic": "control"})
        y3, c3 = await ref_youth(chat_server, clients)

        # The live queue: three entries, wait times, tags; urgent first
        await page.wait_for_selector("#queue-list .queue-item >> nth=2")
        first = page.locator("#queue-list .queue-item").first
        assert await first.get_attribute("data-conversation") == c1
        assert "urgent" in await first.inner_text()
        assert "Chat language: Arabic" in await first.inner_text()
        assert "waited" in await first.locator(".waited").inner_text()
        assert "3 waiting" in await page.inner_text("#queue-total")

        # Claim one, take next twice: three conversations at once
        await page.click(f"#claim-{c1}")
        await page.wait_for_selector(f"#tab-{c1}")
        await page.click("#take-next")
        await page.wait_for_selector(f"#tab-{c2}")
        await page.click("#take-next")
        await page.wait_for_selector(f"#tab-{c3}[aria-current=true]")
        for youth, conv in ((y1, c1), (y2, c2), (y3, c3)):
            await youth.wait_for(lambda y=youth, c=conv: y.conversations[c].epoch >= 1, 5)
        assert await _state(page, c1, "active")

        # PyNaCl youth → browser console, with an unread marker on the other tab
        await y1.send_text(c1, "hej från en Python-ungdom")
        await page.wait_for_selector(f"#tab-{c1} .badge:has-text('1')")
        await console_sees(page, c1, "hej från en Python-ungdom")
        assert await page.locator(f"#tab-{c1} .badge").count() == 0
        # Browser console → PyNaCl youth
        await console_send(page, c1, "hej tillbaka från webbläsaren")
        got = await y1.next_message(5)
        assert got.text == "hej tillbaka från webbläsaren" and got.role == "counsellor"

        # Typing indicator in the list
        await y2.send_typing(c2, True)
        await page.wait_for_selector(f"#tab-{c2} .st:has-text('typing')")

        # States, plainly: paused, left (exit), timed out (pause_max_secs = 5 in tests)
        await y1.pause(True, c1)
        await eventually(lambda: _state(page, c1, "paused"), 5)
        assert "someone is coming" in await page.inner_text(f"#tab-{c1} .st")
        await y2.leave("panic", c2)
        await eventually(lambda: _state(page, c2, "panic_exit"), 5)
        assert await page.inner_text(f"#tab-{c2} .st") == "left (exit)"
        await eventually(lambda: _state(page, c1, "timed_out"), 12)
        assert await page.inner_text(f"#tab-{c1} .st") == "timed out"

        # End from the console; the ended conversation can be closed
        await page.click(f"#tab-{c3}")
        await page.click("#end-conv")
        await page.click("#end-confirm")  # the end asks first (wrap-up dialog)
        await eventually(lambda: _state(page, c3, "done"), 5)
        await y3.wait_for(lambda: y3.conversations[c3].state == "ended", 5)
        await page.click("#close-conv")
        assert await page.locator(f"#tab-{c3}").count() == 0
    finally:
        await ctx.close()


async def test_operator_view_updates_without_reload(
        browser: Any, chat_server: ChatServer, clients: list[ReferenceClient]) -> None:
    await ref_counsellor(chat_server, clients, chat_server.add_staff(alias="Omar"))
    ctx = await browser.new_context(viewport=DESKTOP)
    try:
        page = await ctx.new_page()
        navigations: list[str] = []
        page.on("framenavigated",
                lambda f: navigations.append(f.url) if f == page.main_frame else None)
        await console_login(page, chat_server, chat_server.add_staff(role="operator", alias="Ops"),
                            path="/operator")
        await page.wait_for_selector("#queue-length")
        loaded = len(navigations)
        base = int(await page.inner_text("#queue-length"))
        await page.wait_for_selector("#counsellors td:has-text('Omar')")

        youth, conv = await ref_youth(chat_server, clients)
        await eventually(lambda: _text_is(page, "#queue-length", str(base + 1)), 8)
        await youth.leave("done", conv)
        await eventually(lambda: _text_is(page, "#queue-length", str(base)), 8)
        abandoned = int(await page.inner_text("#abandoned"))
        assert abandoned >= 1
        assert len(navigations) == loaded, "the operator view reloaded"
        assert await page.locator("#chart polyline, #chart text").count() > 0
    finally:
        await ctx.close()


async def _text_is(page: Any, selector: str, want: str) -> bool:
    return (await page.inner_text(selector)).strip() == want


async def test_youth_page_survives_a_lying_server(
        browser: Any, chat_server: ChatServer, clients: list[ReferenceClient]) -> None:
    """Between the page and the server, drop one box, tamper with another and
    replay a third: the page shows a gap, a "could not be verified" line (never
    the text) and each real message exactly once."""
    staff = await ref_counsellor(chat_server, clients, chat_server.add_staff(alias="Kim"))
    ctx = await browser.new_context(viewport=PHONE)
    boxes_seen = 0

    def tamper(frame: str) -> str:
        prefix, payload = frame.split(",", 1)
        event = json.loads(payload)
        ct = event[1]["ct"]
        event[1]["ct"] = ("A" if ct[0] != "A" else "B") + ct[1:]
        return prefix + "," + json.dumps(event)

    async def lie(ws: Any) -> None:
        server = ws.connect_to_server()
        ws.on_message(lambda m: server.send(m))

        def from_server(m: Any) -> None:
            nonlocal boxes_seen
            if isinstance(m, str) and m.startswith('42/youth,["box"'):
                boxes_seen += 1
                if boxes_seen == 2:
                    return  # dropped: the next good box must show a gap
                if boxes_seen == 3:
                    m = tamper(m)
                if boxes_seen == 4:
                    ws.send(m)  # replayed: shown once
            ws.send(m)

        server.on_message(from_server)

    try:
        page = await ctx.new_page()
        await page.route_web_socket(re.compile(r".*/socket\.io/.*"), lie)
        await youth_to_queue(page, chat_server)
        await staff.wait_for(lambda: bool(staff.queue.get("entries")), 5)
        conv = staff.queue["entries"][0]["conversation"]
        await staff.claim(conv)
        await youth_wait_chat(page)
        texts = [f"meddelande {i}" for i in range(1, 6)]
        for text in texts:
            await staff.send_text(conv, text)
        await page.wait_for_selector("#log li.in:has-text('meddelande 5')")
        shown = await page.locator("#log li.in .text").all_inner_texts()
        assert shown == ["meddelande 1", "meddelande 4", "meddelande 5"]
        assert await page.locator("#log li.bad").count() == 1
        assert "kunde inte verifieras" in await page.inner_text("#log li.bad")
        assert await page.locator("#log li.sys:has-text('saknas')").count() == 1
        log = await page.inner_text("#log")
        assert "meddelande 2" not in log and "meddelande 3" not in log
    finally:
        await ctx.close()


async def test_youth_page_acknowledges_boxes_after_a_conversation_ended_mid_batch(
        browser: Any, chat_server: ChatServer, clients: list[ReferenceClient]) -> None:
    """The page batches `delivered` (lib/composer.js). A conversation that
    ends while a batch waits — its last box and the end arrive together —
    must leave nothing behind: in the youth's next conversation the boxes
    are acknowledged again (else the server keeps re-sending them on every
    resume, and the counsellor's backlog fills)."""
    staff = await ref_counsellor(chat_server, clients, chat_server.add_staff(alias="Mo"))
    ctx = await browser.new_context(viewport=PHONE)
    sent: list[str] = []  # every frame the page sent
    held: list[str] = []
    holding = True

    async def together(ws: Any) -> None:
        server = ws.connect_to_server()

        def to_server(m: Any) -> None:
            if isinstance(m, str):
                sent.append(m)
            server.send(m)

        def from_server(m: Any) -> None:
            nonlocal holding
            if holding and isinstance(m, str):
                if m.startswith('42/youth,["box"'):
                    held.append(m)  # reaches the page right before the end
                    return
                if m.startswith('42/youth,["state"') and '"ended"' in m:
                    holding = False
                    for box in held:
                        ws.send(box)
            ws.send(m)

        ws.on_message(to_server)
        server.on_message(from_server)

    def acknowledged(conv: str) -> bool:
        return any('"delivered"' in f and conv in f for f in sent)

    try:
        page = await ctx.new_page()
        await page.route_web_socket(re.compile(r".*/socket\.io/.*"), together)
        await youth_to_queue(page, chat_server)
        await staff.wait_for(lambda: bool(staff.queue.get("entries")), 5)
        first = staff.queue["entries"][0]["conversation"]
        await staff.claim(first)
        await youth_wait_chat(page)
        await staff.send_text(first, "sista raden")
        await staff.end(first)
        await page.wait_for_selector("main[data-screen=ended] li.in:has-text('sista raden')")
        # A new chat on the same page.
        await page.click("#again")
        await page.click("#go-on")
        await page.wait_for_selector("main[data-screen=profile]")
        await page.click("#skip")
        await page.wait_for_selector("main[data-screen=waiting]")
        await staff.wait_for(lambda: any(e["conversation"] != first
                                         for e in staff.queue.get("entries", [])), 5)
        second = next(e["conversation"] for e in staff.queue["entries"]
                      if e["conversation"] != first)
        await staff.claim(second)
        await youth_wait_chat(page)
        await staff.send_text(second, "hej igen")
        await page.wait_for_selector("#log li.in:has-text('hej igen')")
        await eventually(lambda: acknowledged(second), 10)
    finally:
        await ctx.close()


async def test_youth_page_shows_a_partner_card_as_text(
        browser: Any, chat_server: ChatServer, clients: list[ReferenceClient]) -> None:
    """A referral card (protocol.md, type "card") from a PyNaCl counsellor is
    shown field by field as text; its web address is not a link."""
    staff = await ref_counsellor(chat_server, clients, chat_server.add_staff(alias="Ida"))
    ctx = await browser.new_context(viewport=PHONE)
    try:
        page = await ctx.new_page()
        await youth_to_queue(page, chat_server)
        await staff.wait_for(lambda: bool(staff.queue.get("entries")), 5)
        conv = staff.queue["entries"][0]["conversation"]
        await staff.claim(conv)
        await youth_wait_chat(page)
        c = staff.conversations[conv]
        seq = c.sent_seq + 1
        card = {"code": "solna-jour", "name": "Tjejjouren <i>Solna</i>", "kind": "ngo",
                "municipality": "Solna", "phone": "08-123 45 67",
                "url": "https://example.org/jour", "hours": "Mån–fre 9–17"}
        body = {"type": "card", "card": card, "sent_at": 1_700_000_000_000}
        await staff.call("send", {"conversation": conv, "epoch": c.epoch, "seq": seq,
                                  "boxes": staff._seal_for_all(c, c.roster, seq, body)})
        c.sent_seq = seq
        item = await page.wait_for_selector("#log li[data-kind=card]")
        text = await item.inner_text()
        assert "Tjejjouren <i>Solna</i>" in text and "Mån–fre 9–17" in text
        assert await page.locator("#log li[data-kind=card] i").count() == 0
        assert await page.get_attribute("#log li[data-kind=card] a.tel", "href") == "tel:081234567"
        assert await page.locator("#log li[data-kind=card] a[href^='http']").count() == 0
    finally:
        await ctx.close()


async def test_duty_button_waits_for_the_socket(browser: Any, chat_server: ChatServer) -> None:
    # A click before the socket is up could only answer "offline" and leave a
    # counsellor who signed in and clicked at once off duty: the button stays
    # disabled, with a "connecting" notice, until the first connect.
    ctx = await browser.new_context(viewport=DESKTOP)
    held: list[Any] = []
    released = False

    def hold(ws: Any) -> None:
        # The page's WebSocket opens, but no server is behind it yet: socket.io
        # waits for engine.io's open packet, as on a slow network.
        if released:
            ws.connect_to_server()
        else:
            held.append(ws)

    try:
        page = await ctx.new_page()
        await page.route_web_socket(re.compile(r"/socket\.io/"), hold)
        await console_login(page, chat_server, chat_server.add_staff())
        await page.wait_for_selector("#duty[disabled]")
        await eventually(lambda: len(held) > 0)
        notice = page.locator("p.offline[role=status]")
        assert await notice.inner_text() == "Connecting …"
        assert await page.get_attribute("#duty", "aria-pressed") == "false"

        released = True
        for ws in held:
            ws.connect_to_server()
        await console_duty_on(page)
        assert await notice.count() == 0
    finally:
        await ctx.close()


async def test_console_says_when_the_server_cannot_be_reached(
        browser: Any, chat_server: ChatServer) -> None:
    # The first connect fails (the WebSocket closes without a word, so the
    # attempt ends at socket.io's connect timeout; long-polling is refused):
    # the notice changes from "Connecting …" to "cannot be reached", the duty
    # button stays disabled, and once the server answers socket.io's own
    # retry connects and the notice goes.
    ctx = await browser.new_context(viewport=DESKTOP)
    refused = 0
    reachable = False

    async def ws_route(ws: Any) -> None:
        nonlocal refused
        if reachable:
            ws.connect_to_server()
        else:
            refused += 1
            await ws.close()

    async def polling_route(route: Any) -> None:
        nonlocal refused
        if reachable:
            await route.continue_()
        else:
            refused += 1
            await route.abort("connectionrefused")

    try:
        page = await ctx.new_page()
        await page.route_web_socket(re.compile(r"/socket\.io/"), ws_route)
        await page.route(re.compile(r"/socket\.io/"), polling_route)
        await console_login(page, chat_server, chat_server.add_staff())
        # socket.io's connect timeout (10 s in lib/calls.js) ends the attempt
        unreachable = "The server cannot be reached. Trying again …"
        await eventually(lambda: _text_is(page, "p.offline[role=status]", unreachable), 20)
        # At once: socket.io retries 0.25–0.75 s after the failure, and a retry
        # that meets the silent WebSocket waits out another 10 s.
        reachable = True
        assert refused > 0
        assert await page.get_attribute("#duty", "disabled") is not None
        await page.wait_for_selector("#duty:not([disabled])", timeout=25_000)
        await console_duty_on(page)
        assert await page.locator("p.offline").count() == 0
    finally:
        await ctx.close()


async def test_console_shows_the_page_and_chat_language_by_name(
        browser: Any, chat_server: ChatServer) -> None:
    """A youth reads the page in Persian and asks to chat in Somali: the
    English console names both, in the queue and in the conversation's head."""
    staff_ctx = await browser.new_context(viewport=DESKTOP)
    youth_ctx = await browser.new_context(viewport=PHONE)
    try:
        staff, youth = await staff_ctx.new_page(), await youth_ctx.new_page()
        await console_login(staff, chat_server, chat_server.add_staff(alias="Lale"))
        await console_duty_on(staff)
        await open_youth(youth, chat_server)
        await youth.select_option("#lang", "fa")
        await youth.wait_for_selector("html[lang=fa][dir=rtl]", state="attached")
        await youth.click("#go-on")
        await youth.wait_for_selector("main[data-screen=profile]")
        await youth.select_option("select[name=language]", "so")
        await youth.click("#start")
        await youth.wait_for_selector("main[data-screen=waiting]")

        item = staff.locator("#queue-list .queue-item:has(.tag.language)").last
        await item.wait_for()
        tags = await item.locator(".tag.language").all_inner_texts()
        assert tags == ["Chat language: Somali", "Page language: Persian"]
        conv = await item.get_attribute("data-conversation")
        await staff.click(f"#claim-{conv}")
        await staff.wait_for_selector(f"#pane[data-conversation='{conv}'] .tag.language")
        assert await staff.locator("#pane .tag.language").all_inner_texts() == tags
        await youth_wait_chat(youth)
        await staff.click("#end-conv")
        await staff.click("#end-confirm")  # the end asks first (wrap-up dialog)
        await staff.wait_for_selector("#close-conv")
    finally:
        await youth_ctx.close()
        await staff_ctx.close()
