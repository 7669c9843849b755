"""The counsellor console through an evening shift: arrivals announced by
title, tone and (when asked for) desktop notifications that carry no
content; conversations by names a person can hold, with a nickname kept in
the page; canned responses put into the message box, never sent by
themselves; keyboard shortcuts with a help overlay; tools that open without
moving the log; an end that asks first and takes the wrap-up in the same
step; and the whole console in Arabic, right to left, with no missing text.

Youths are played by the Python reference client (PyNaCl) through the real
server; the console is the built page in real Chromium. The only stand-ins
are browser APIs outside the project: window.Notification (a headless
browser shows none) and a counter on OscillatorNode.start (the tone).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from chatserver.client.reference import ReferenceClient
from tests.browser.conftest import DESKTOP, ChatServer
from tests.browser.helpers import (
    TIMEOUT_MS,
    Wire,
    console_duty_on,
    console_login,
)
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

# Browser APIs outside the project, stood in for before the page's script runs.
STAND_INS = """
window.__notes = [];
window.__asked = 0;
window.__tones = 0;
class FakeNotification {
  constructor(title, options) {
    window.__notes.push({ title: String(title), body: String((options && options.body) || ''),
                          tag: String((options && options.tag) || '') });
  }
  close() {}
}
FakeNotification.permission = 'default';
FakeNotification.requestPermission = async () => {
  window.__asked += 1;
  FakeNotification.permission = 'granted';
  return 'granted';
};
window.Notification = FakeNotification;
const realStart = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) {
  window.__tones += 1;
  return realStart.apply(this, args);
};
"""

LABEL = re.compile(r"^(Blue|Green|Red|Yellow|Purple|Orange|Pink|Brown) \d{1,2}$")


async def ref_youth(server: ChatServer, clients: list[ReferenceClient],
                    profile: dict[str, Any] | None = None) -> tuple[ReferenceClient, str]:
    youth = ReferenceClient()
    await youth.connect(server.url, "/youth")
    clients.append(youth)
    reply = await youth.start(profile)
    return youth, str(reply["conversation"])


async def claim(page: Any, youth: ReferenceClient, conv: str) -> None:
    await page.click(f"#claim-{conv}")
    await page.wait_for_selector(f"#tab-{conv}[aria-current=true]", timeout=TIMEOUT_MS)
    await youth.wait_for(lambda: youth.conversations[conv].epoch >= 1, 5)


async def title_is(page: Any, want: str) -> bool:
    return str(await page.title()) == want


async def test_arrivals_title_tone_and_notifications_without_content(
        browser: Any, chat_server: ChatServer, clients: list[ReferenceClient]) -> None:
    ctx = await browser.new_context(viewport=DESKTOP)
    try:
        await ctx.add_init_script(STAND_INS)
        page = await ctx.new_page()
        await console_login(page, chat_server, chat_server.add_staff(alias="Lina"))
        await console_duty_on(page)
        # Permission is asked only after a click on the console's own button.
        assert await page.evaluate("window.__asked") == 0
        await page.click("#notify")
        await page.wait_for_selector("#notify[aria-pressed=true]")
        assert await page.evaluate("window.__asked") == 1
        assert await page.get_attribute("#sound", "aria-pressed") == "true"  # on by default

        # A youth joins the queue: "(1) Console", a tone, "a youth is waiting"
        y1, c1 = await ref_youth(chat_server, clients)
        await eventually(lambda: title_is(page, "(1) Console"), 5)
        await eventually(lambda: page.evaluate("window.__tones >= 1"), 5)
        notes = await page.evaluate("window.__notes")
        assert [n["body"] for n in notes] == ["A youth is waiting."]
        label1 = await page.inner_text(f"#queue-list [data-conversation='{c1}'] .pseudo")
        assert LABEL.match(label1), label1
        await claim(page, y1, c1)
        await eventually(lambda: title_is(page, "Console"), 5)
        assert await page.inner_text(f"#tab-{c1} .pseudo") == label1  # the queue's name, kept

        y2, c2 = await ref_youth(chat_server, clients)
        await eventually(lambda: title_is(page, "(1) Console"), 5)
        await claim(page, y2, c2)  # now c2 is open, c1 is not
        await eventually(lambda: title_is(page, "Console"), 5)

        # A message into the conversation that is not open: the count, a tone,
        # "new message in <colour name>" — never the text, never a pseudonym
        tones = await page.evaluate("window.__tones")
        secret = "jag heter Amina och bor på Storgatan"
        await y1.send_text(c1, secret)
        await page.wait_for_selector(f"#tab-{c1} .badge:has-text('1')")
        await eventually(lambda: title_is(page, "(1) Console"), 5)
        assert await page.evaluate("window.__tones") > tones
        notes = await page.evaluate("window.__notes")
        assert notes[-1]["body"] == f"New message in {label1}."
        for n in notes:
            shown = n["title"] + n["body"] + n["tag"]
            assert "Amina" not in shown and "Storgatan" not in shown
            assert not re.search(r"\bc-[0-9a-f]{6,}", shown)
            assert c1 not in shown and c2 not in shown  # no conversation id either

        # Muted: the count still rises, the tone stays silent
        await page.click("#sound")
        await page.wait_for_selector("#sound[aria-pressed=false]")
        tones = await page.evaluate("window.__tones")
        await y1.send_text(c1, "en till")
        await page.wait_for_selector(f"#tab-{c1} .badge:has-text('2')")
        await eventually(lambda: title_is(page, "(2) Console"), 5)
        assert await page.evaluate("window.__tones") == tones
        # Reading it clears the count
        await page.click(f"#tab-{c1}")
        await eventually(lambda: title_is(page, "Console"), 5)
    finally:
        await ctx.close()


async def test_names_canned_keys_tools_and_a_careful_end(
        browser: Any, chat_server: ChatServer, clients: list[ReferenceClient]) -> None:
    ctx = await browser.new_context(viewport=DESKTOP)
    wire = Wire()
    try:
        page = await ctx.new_page()
        wire.attach(page)
        await console_login(page, chat_server, chat_server.add_staff(alias="Noor"))
        await console_duty_on(page)
        y1, c1 = await ref_youth(chat_server, clients)
        y2, c2 = await ref_youth(chat_server, clients)
        await page.wait_for_selector(f"#claim-{c2}")
        waiting = [await page.inner_text(f"#queue-list [data-conversation='{c}'] .pseudo")
                   for c in (c1, c2)]
        await claim(page, y1, c1)
        await claim(page, y2, c2)

        # Names a person can hold: colour + number, distinct, the queue's name
        # kept by the tab, no pseudonym on screen
        names = [await page.inner_text(f"#tab-{c} .pseudo") for c in (c1, c2)]
        assert all(LABEL.match(n) for n in names) and names[0] != names[1], names
        assert names == waiting
        assert not re.search(r"\bc-[0-9a-f]{6,}", await page.inner_text("main"))
        assert await page.inner_text("#pane-h") == names[1]
        # A nickname, in page memory only: shown, never sent
        await page.fill("input[name=nickname]", "Syster A")
        await page.click("#nickname-set")
        await page.wait_for_selector(f"#tab-{c2} .pseudo:has-text('Syster A')")
        assert await page.inner_text("#pane-h") == "Syster A"
        assert not wire.contains("Syster A")

        # Canned responses: a click puts the text into the box; nothing is sent
        assert await page.locator("#canned .canned-btn").count() == 4
        await page.click("#canned-3")
        assert await page.input_value("#composer") == \
            "Are you safe right now? Can anyone see what you write?"
        await page.press("#composer", "End")
        await page.type("#composer", " ")
        await page.keyboard.press("Alt+1")  # the greeting, at the caret, in the box
        value = await page.input_value("#composer")
        assert value.startswith(
            "Are you safe right now? Can anyone see what you write? Hi and welcome.")
        assert await page.locator("#log li.out").count() == 0
        # Single keys do not fire in the box: "j" is typed, the conversation stays
        await page.type("#composer", "j")
        assert (await page.input_value("#composer")).endswith("j")
        assert await page.get_attribute(f"#tab-{c2}", "aria-current") == "true"
        # Alt+↑/↓ do, even in the box; the draft stays with its conversation
        await page.keyboard.press("Alt+ArrowDown")
        await page.wait_for_selector(f"#tab-{c1}[aria-current=true]")
        await page.keyboard.press("Alt+ArrowUp")
        await page.wait_for_selector(f"#tab-{c2}[aria-current=true]")
        assert await page.input_value("#composer") == value + "j"
        # Out of the box with Esc: single keys work
        await page.focus("#composer")
        await page.keyboard.press("Escape")
        await page.keyboard.press("j")
        await page.wait_for_selector(f"#tab-{c1}[aria-current=true]")
        # (a conversation opens with its box focused: Esc before the next key)
        await page.keyboard.press("Escape")
        await page.keyboard.press("k")
        await page.wait_for_selector(f"#tab-{c2}[aria-current=true]")
        await page.keyboard.press("Escape")
        await page.keyboard.press("t")
        assert await page.evaluate(
            "document.activeElement.matches('#pane .tool summary')")
        await page.keyboard.press("Escape")
        await page.keyboard.press("c")
        assert await page.evaluate("document.activeElement.id") == "composer"
        await page.keyboard.press("Escape")
        await page.keyboard.press("?")
        await page.wait_for_selector("#keys-help[open]")
        help_text = await page.inner_text("#keys-help")
        for what in ("Next conversation", "Take the next in the queue", "To the message box",
                     "To the tools", "Alt+1 … Alt+9"):
            assert what in help_text
        await page.keyboard.press("j")  # no shortcut under the overlay
        assert await page.get_attribute(f"#tab-{c2}", "aria-current") == "true"
        # Single keys can be switched off (WCAG 2.1.4); Alt shortcuts stay
        await page.uncheck("#keys-single")
        await page.keyboard.press("Escape")
        await page.wait_for_selector("#keys-help", state="hidden")
        await page.keyboard.press("j")
        assert await page.get_attribute(f"#tab-{c2}", "aria-current") == "true"
        await page.click("#keys-help-open")
        await page.check("#keys-single")
        await page.keyboard.press("Escape")
        await page.wait_for_selector("#keys-help", state="hidden")

        # Tools open without moving the conversation: a long log, read from
        # its top; opening "Transfer" and listing colleagues (a redraw of the
        # pane) leaves the log where it was and on screen
        await page.click(f"#tab-{c1}")
        for i in range(12):  # within the send burst; several lines each
            await y1.send_text(c1, "\n".join(f"rad {i}.{j}" for j in range(5)))
        await page.wait_for_selector("#log li.in:has-text('rad 11.4')")
        await page.eval_on_selector("#log", "log => { log.scrollTop = 0; }")
        await page.evaluate("window.scrollTo(0, 0)")
        before = await page.eval_on_selector(
            "#log", "log => [log.scrollTop, log.getBoundingClientRect().top]")
        await page.click("#tool-transfer summary")
        await page.click("#transfer-list")
        await page.wait_for_selector("#colleagues, #tool-transfer p:has-text('No colleague')")
        after = await page.eval_on_selector(
            "#log", "log => [log.scrollTop, log.getBoundingClientRect().top]")
        assert after == before
        # At the bottom, the newest message stays in view while a tool is used
        await page.eval_on_selector("#log", "log => { log.scrollTop = log.scrollHeight; }")
        await page.click("#tool-refer summary")
        await page.fill("input[name=partner-query]", "polis")
        await page.click("#partner-search")
        await page.wait_for_selector("#partner-list")
        # Partner kinds by their names, not their codes
        kinds = " ".join(await page.locator("#partner-list .p-meta").all_inner_texts())
        assert "Police" in kinds and not re.search(r"\bpolice\b|_", kinds), kinds
        last_visible = await page.eval_on_selector(
            "#log", """log => {
                const last = log.lastElementChild.getBoundingClientRect();
                const box = log.getBoundingClientRect();
                return last.bottom <= box.bottom + 1 && last.top >= box.top - 1
                    && last.bottom <= window.innerHeight && last.top >= 0;
            }""")
        assert last_visible

        # A careful end: not next to Send; asks first; Cancel changes nothing
        assert await page.locator(".pane-head #end-conv").count() == 1
        assert await page.locator("form.composer #end-conv").count() == 0
        await page.click("#end-conv")
        await page.wait_for_selector("#end-dialog[open]")
        dialog_text = await page.inner_text("#end-dialog")
        assert names[0] in dialog_text and "Return code" in dialog_text
        assert await page.locator("#end-dialog input[name=end-reason]").count() >= 5
        assert await page.locator("#end-dialog #end-return").count() == 1
        await page.click("#end-cancel")
        await page.wait_for_selector("#end-dialog", state="hidden")
        assert await page.get_attribute(f"#tab-{c1} .st", "data-state") == "active"
        assert y1.conversations[c1].state != "ended"
        # End with a contact reason ticked in the same step
        await page.click("#end-conv")
        await page.check("#end-dialog input[name=end-reason][value=control]")
        await page.click("#end-confirm")
        async def tab_done() -> bool:
            return await page.get_attribute(f"#tab-{c1} .st", "data-state") == "done"

        # The console's tab turns "done" when the server's end reaches it,
        # which may be after the youth's client has seen the end.
        await y1.wait_for(lambda: y1.conversations[c1].state == "ended", 5)
        assert await eventually(tab_done, 5)
        assert wire.contains('"reasons":["control"]')
    finally:
        await ctx.close()


async def test_console_in_arabic_right_to_left_without_missing_text(
        browser: Any, chat_server: ChatServer, clients: list[ReferenceClient]) -> None:
    ctx = await browser.new_context(viewport=DESKTOP)
    try:
        page = await ctx.new_page()
        await console_login(page, chat_server, chat_server.add_staff(alias="Rami"), lang="ar")
        assert await page.get_attribute("html", "dir") == "rtl"
        assert await page.get_attribute("html", "lang") == "ar"
        await console_duty_on(page)
        y1, c1 = await ref_youth(chat_server, clients, {"topic": "control", "language": "sv"})
        await page.wait_for_selector(f"#claim-{c1}")
        await claim(page, y1, c1)
        # A canned text: titled in the console's language, inserted in the
        # language the youth chats in
        assert await page.inner_text("#canned-3") == "هل أنت بأمان؟"
        await page.click("#canned-3")
        assert await page.input_value("#composer") == \
            "Är du trygg just nu? Kan någon se det du skriver?"
        await page.click("#tool-refer summary")
        await page.click("#end-conv")
        await page.wait_for_selector("#end-dialog[open]")
        # A key missing from the catalog would show as "staff.…"
        body = await page.inner_text("body")
        assert "staff." not in body and "codes." not in body
        assert "إنهاء المحادثة" in body and "محادثاتي" in body
        assert re.search(r"(أزرق|أخضر|أحمر|أصفر|بنفسجي|برتقالي|وردي|بني) \d{1,2}",
                         await page.inner_text(f"#tab-{c1} .pseudo"))
        await page.click("#end-cancel")
        await page.keyboard.press("?")
        await page.wait_for_selector("#keys-help[open]")
        assert "staff." not in await page.inner_text("#keys-help")
        assert "اختصارات لوحة المفاتيح" in await page.inner_text("#keys-help")
        # The liaison page lists Arabic too
        await page.goto(chat_server.url + "/join")
        options = await page.eval_on_selector_all(
            "select.lang option", "os => os.map(o => o.value)")
        assert "ar" in options
        await page.select_option("select.lang", "ar")
        assert await page.get_attribute("html", "dir") == "rtl"
        assert "liaison." not in await page.inner_text("body")
    finally:
        await ctx.close()
