"""Accessibility and languages in real Chromium.

- axe-core (the npm file, injected into a context with bypass_csp, the only
  context that bypasses the CSP) on every youth screen, in Swedish and Arabic,
  and on the console and operator view: no serious or critical violation.
- A keyboard-only youth completes a chat (Tab, Enter and typing only).
- Arabic renders right-to-left.
- Screenshots for docs/screenshots/ (written there when CHAT_SCREENSHOTS=1,
  otherwise into the test's temporary directory so a test run changes no
  tracked file).

The module's order matters and is part of the story: the "nobody on duty"
card is checked first, before any counsellor goes on duty.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.browser.conftest import AXE_JS, DESKTOP, PHONE, REPO, ChatServer, require
from tests.browser.helpers import (
    console_claim_first,
    console_duty_on,
    console_login,
    console_sees,
    console_send,
    open_youth,
    youth_sees,
    youth_send,
    youth_wait_chat,
)
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("CHAT_SCREENSHOTS") == "1":
        out = REPO / "docs" / "screenshots"
        out.mkdir(parents=True, exist_ok=True)
        return out
    return tmp_path_factory.mktemp("screenshots")


async def axe(page: Any, where: str) -> None:
    """Run axe-core on the page as it is now; fail on serious/critical issues."""
    require(AXE_JS.is_file(), "axe-core is not installed (npm ci in web_client/)")
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE_JS))
    result = await page.evaluate(
        "(tags) => axe.run(document, "
        "{runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        WCAG_TAGS)
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(n["target"][0] if isinstance(n["target"][0], str) else str(n["target"])
                    for n in v["nodes"][:3])
        for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"axe on {where}: " + " | ".join(bad)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def staff(browser: Any, chat_server: ChatServer) -> AsyncIterator[Any]:
    """A counsellor console (signed in, not yet on duty), checked with axe too."""
    ctx = await browser.new_context(bypass_csp=True, viewport=DESKTOP)
    page = await ctx.new_page()
    yield page
    await ctx.close()


async def test_youth_screens_pass_axe_and_nobody_on_duty_card(
        browser: Any, chat_server: ChatServer, staff: Any, shots: Path) -> None:
    ctx = await browser.new_context(bypass_csp=True, viewport=PHONE)
    try:
        youth = await ctx.new_page()
        await open_youth(youth, chat_server)
        await youth.screenshot(path=str(shots / "youth-phone-safety.png"), full_page=True)
        await axe(youth, "safety page (sv)")

        # Nobody on duty: the card with hours and alternatives, nothing collected
        await youth.click("#go-on")
        await youth.wait_for_selector("main[data-screen=closed]")
        text = await youth.inner_text("main")
        assert "Kvinnofridslinjen" in text and "020-50 50 50" in text
        assert "måndag–fredag" in text
        assert await youth.locator("a[href='tel:112']").count() >= 1
        await youth.screenshot(path=str(shots / "youth-phone-closed.png"), full_page=True)
        await axe(youth, "nobody-on-duty card")

        # A counsellor goes on duty; the youth tries again
        account = chat_server.add_staff(alias="Aya")
        await console_login(staff, chat_server, account)
        await console_duty_on(staff)
        await youth.click("#retry")
        await youth.wait_for_selector("main[data-screen=profile]")
        await axe(youth, "profile")
        await youth.select_option("select[name=age_band]", "16-17")
        await youth.select_option("select[name=municipality]", "Botkyrka")
        await youth.click("#start")
        await youth.wait_for_selector("main[data-screen=waiting] #queue-live .position")
        await youth.screenshot(path=str(shots / "youth-phone-waiting.png"))
        await axe(youth, "waiting")
        await axe(staff, "console with a queue")

        conv = await console_claim_first(staff)
        await youth_wait_chat(youth)
        await youth_send(youth, "Hej, jag vill prata med någon om min familj.")
        await console_sees(staff, conv, "min familj")
        await console_send(staff, conv, "Hej! Jag heter Aya. Berätta gärna, jag lyssnar.")
        await youth_sees(youth, "jag lyssnar")
        await youth.fill("#composer", "De vill att jag ska")
        await youth.screenshot(path=str(shots / "youth-phone-chat.png"))
        await axe(youth, "chat")
        await staff.screenshot(path=str(shots / "console.png"))
        await axe(staff, "console with a conversation")

        # Arabic: right to left, same screens
        await youth.select_option("#lang", "ar")
        assert await youth.get_attribute("html", "dir") == "rtl"
        await youth.screenshot(path=str(shots / "youth-phone-chat-arabic.png"))
        await axe(youth, "chat (ar)")
        await youth.select_option("#lang", "sv")

        # "Someone is coming": the decoy, then back with the chat intact
        await youth.click("#pause")
        assert await youth.get_attribute("main", "data-screen") == "decoy"
        assert "Hej" not in await youth.inner_text("body")  # the chat is out of the DOM
        await youth.screenshot(path=str(shots / "youth-phone-decoy.png"))
        await axe(youth, "decoy")
        await youth.click("#decoy-done")
        await youth.wait_for_selector("main[data-screen=chat]")

        await youth.click("#end")
        await youth.click("#end-yes")
        await youth.wait_for_selector("main[data-screen=ended]")
        await axe(youth, "ended")
    finally:
        await ctx.close()


async def test_console_login_and_operator_view_pass_axe(
        browser: Any, chat_server: ChatServer, shots: Path) -> None:
    ctx = await browser.new_context(bypass_csp=True, viewport=DESKTOP)
    try:
        page = await ctx.new_page()
        await page.goto(chat_server.url + "/console")
        await page.wait_for_selector("form.login")
        await axe(page, "console sign-in")
        operator = chat_server.add_staff(role="operator", alias="Drift")
        await console_login(page, chat_server, operator, path="/operator")
        await page.wait_for_selector("#queue-length")
        await page.wait_for_selector("#chart")
        await page.screenshot(path=str(shots / "operator.png"), full_page=True)
        await axe(page, "operator view")
    finally:
        await ctx.close()


async def tab_to(page: Any, selector: str, limit: int = 60) -> None:
    """Press Tab until the focused element matches selector."""
    for _ in range(limit):
        if await page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"{selector} not reached by Tab")


async def test_keyboard_only_youth_completes_a_chat(
        browser: Any, chat_server: ChatServer, staff: Any) -> None:
    ctx = await browser.new_context(viewport=PHONE)
    try:
        youth = await ctx.new_page()
        await open_youth(youth, chat_server)
        # Keyboard only from here on the youth's side: Tab, Enter, typing.
        await youth.keyboard.press("Tab")
        assert await youth.evaluate("document.activeElement.id") == "qx"
        await tab_to(youth, "#go-on")
        await youth.keyboard.press("Enter")
        await youth.wait_for_selector("main[data-screen=profile]")
        await tab_to(youth, "select[name=topic]")
        await youth.keyboard.press("ArrowDown")  # first real choice
        await tab_to(youth, "#start")
        await youth.keyboard.press("Enter")
        await youth.wait_for_selector("main[data-screen=waiting]")

        conv = await console_claim_first(staff)  # the counsellor may use a mouse
        await youth_wait_chat(youth)
        assert await youth.evaluate("document.activeElement.id") == "composer"
        await youth.keyboard.type("Hej, jag använder bara tangentbordet.")
        await youth.keyboard.press("Enter")
        await youth.wait_for_selector("#log li.out [data-state=sent]")
        await console_sees(staff, conv, "bara tangentbordet")
        await console_send(staff, conv, "Det fungerar bra!")
        await youth_sees(youth, "Det fungerar bra!")

        # "Someone is coming" and back, by keyboard
        await tab_to(youth, "#pause")
        await youth.keyboard.press("Enter")
        await youth.wait_for_selector("main[data-screen=decoy]")
        await tab_to(youth, "#decoy-done")
        await youth.keyboard.press("Enter")
        await youth.wait_for_selector("main[data-screen=chat]")

        # End, with the confirmation, by keyboard
        await tab_to(youth, "#end")
        await youth.keyboard.press("Enter")
        await eventually(lambda: youth.evaluate("document.activeElement.id === 'end-yes'"), 3)
        await youth.keyboard.press("Enter")
        await youth.wait_for_selector("main[data-screen=ended]")
        await eventually(lambda: _state(staff, conv, "youth_left"), 5)
    finally:
        await ctx.close()


async def test_keyboard_language_change_keeps_the_focus(
        browser: Any, chat_server: ChatServer) -> None:
    """Changing the language re-renders the whole page; a keyboard user stays
    on the language menu (not thrown back to the top) and the quick exit is
    still one Shift+Tab away."""
    ctx = await browser.new_context(viewport=PHONE)
    try:
        page = await ctx.new_page()
        await open_youth(page, chat_server)
        await tab_to(page, "#lang")
        assert await page.get_attribute("html", "lang") == "sv"
        # One step to the neighbouring language in the menu, whichever it is
        codes = await page.eval_on_selector_all("#lang option", "os => os.map(o => o.value)")
        at = codes.index("sv")
        key, neighbour = ("ArrowUp", codes[at - 1]) if at > 0 else ("ArrowDown", codes[1])
        await page.keyboard.press(key)
        await page.wait_for_selector(f"html[lang={neighbour}]", state="attached", timeout=3000)
        assert await page.evaluate("document.activeElement.id") == "lang"
        await page.keyboard.press("Shift+Tab")
        assert await page.evaluate("document.activeElement.id") == "qx"
    finally:
        await ctx.close()


async def _state(staff: Any, conv: str, want: str) -> bool:
    return await staff.get_attribute(f"#tab-{conv} .st", "data-state") == want


async def test_arabic_renders_right_to_left(browser: Any, chat_server: ChatServer,
                                            shots: Path) -> None:
    ctx = await browser.new_context(viewport=PHONE)
    try:
        page = await ctx.new_page()
        await open_youth(page, chat_server)
        await page.select_option("#lang", "ar")
        assert await page.get_attribute("html", "dir") == "rtl"
        assert await page.get_attribute("html", "lang") == "ar"
        direction = "getComputedStyle(document.querySelector('main')).direction"
        assert await page.evaluate(direction) == "rtl"
        assert await page.text_content("#qx") == "خروج سريع"
        assert "قبل أن تبدأ" in (await page.text_content("main h1") or "")
        # The exit button (first in the bar) sits at the right edge in RTL
        qx = await page.locator("#qx").bounding_box()
        lang = await page.locator("#lang").bounding_box()
        assert qx is not None and lang is not None and qx["x"] > lang["x"]
        await page.screenshot(path=str(shots / "youth-phone-safety-arabic.png"))
        # Mobile first: nothing is wider than a 320 px phone, in either direction
        await page.set_viewport_size({"width": 320, "height": 640})
        for lang_code in ("ar", "sv"):
            await page.select_option("#lang", lang_code)
            assert await page.evaluate("document.documentElement.scrollWidth") <= 320
        # The language switch works both ways
        await page.select_option("#lang", "en")
        assert await page.get_attribute("html", "dir") == "ltr"
        assert await page.text_content("#qx") == "Quick exit"
        await page.set_viewport_size(DESKTOP)
        await page.select_option("#lang", "sv")
        await page.screenshot(path=str(shots / "youth-desktop-safety.png"))
    finally:
        await ctx.close()
