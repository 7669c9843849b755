"""How a youth's chat ends, and how a start is refused, in real Chromium.

A reload (or a closed tab) reaches the counsellor as "page closed", never as
the quick exit, so nobody escalates a panic that did not happen. The ended
screen keeps no transcript: the messages leave the DOM when the youth leaves
that screen, and at the latest ``TRANSCRIPT_KEEP_MS`` after the end (the test
moves the page's clock on with Playwright's clock API; the page itself has no
test hook). A youth refused at the start (here: the start limit per address)
is shown the emergency number and the alternatives as ``tel:`` links."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from chatserver.client.reference import ReferenceClient, staff_login
from tests.browser.conftest import DIST, PHONE, ChatServer, NeutralSite, StaffAccount, require
from tests.browser.helpers import (
    TIMEOUT_MS,
    console_claim_first,
    console_duty_on,
    console_login,
    console_send,
    console_state,
    open_youth,
    youth_sees,
    youth_send,
    youth_to_queue,
    youth_wait_chat,
)
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

# web_client/src/youth/screens/ended.js TRANSCRIPT_KEEP_MS, and a little more.
PAST_DEADLINE = "01:01"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def console(browser: Any, chat_server: ChatServer) -> AsyncIterator[Any]:
    account: StaffAccount = chat_server.add_staff(alias="Sara")
    ctx = await browser.new_context()
    page = await ctx.new_page()
    await console_login(page, chat_server, account)
    await console_duty_on(page)
    yield page
    await ctx.close()


async def test_reload_is_reported_as_page_closed_not_quick_exit(
        browser: Any, chat_server: ChatServer, console: Any) -> None:
    ctx = await browser.new_context(viewport=PHONE)
    try:
        youth = await ctx.new_page()
        await youth_to_queue(youth, chat_server)
        conv = await console_claim_first(console)
        await youth_wait_chat(youth)
        await youth_send(youth, "hej")
        await console_send(console, conv, "hej, jag heter Sara")
        await youth_sees(youth, "jag heter Sara")

        await youth.reload()

        async def ended() -> bool:
            return await console_state(console, conv) not in ("active", "paused", "waiting", "None")

        await eventually(ended, 10)
        assert await console_state(console, conv) == "page_closed"
        label = await console.text_content(f"#tab-{conv} .st")
        assert label is not None and "page closed" in label
        assert "left (exit)" not in label
    finally:
        await ctx.close()


async def _chat_with_lines(browser: Any, server: ChatServer, console: Any
                           ) -> tuple[Any, Any, str, list[str]]:
    """A youth page (with Playwright's clock installed) in a chat where both
    sides wrote a line; returns the context, the page, the conversation and
    the lines."""
    ctx = await browser.new_context(viewport=PHONE)
    youth = await ctx.new_page()
    await youth.clock.install()  # time still flows; the test may jump it ahead
    await youth_to_queue(youth, server)
    conv = await console_claim_first(console)
    await youth_wait_chat(youth)
    mine, theirs = f"hemligt-{secrets.token_hex(4)}", f"svar-{secrets.token_hex(4)}"
    await youth_send(youth, mine)
    await console_send(console, conv, theirs)
    await youth_sees(youth, theirs)
    return ctx, youth, conv, [mine, theirs]


async def _shows_none_of(page: Any, lines: list[str]) -> bool:
    text, html = await page.evaluate("[document.body.innerText, document.body.innerHTML]")
    return not any(line in text or line in html for line in lines)


async def test_ended_screen_drops_the_transcript_at_the_deadline(
        browser: Any, chat_server: ChatServer, console: Any) -> None:
    ctx, youth, _conv, lines = await _chat_with_lines(browser, chat_server, console)
    try:
        await console.click("#end-conv")
        await console.click("#end-confirm")  # the end asks first (wrap-up dialog)
        await youth.wait_for_selector("main[data-screen=ended]", timeout=TIMEOUT_MS)
        # Readable right after the end ...
        text = await youth.inner_text("main")
        assert all(line in text for line in lines)

        await youth.clock.fast_forward(PAST_DEADLINE)

        # ... gone from the screen and the DOM after the deadline; the end message stays
        await eventually(lambda: _shows_none_of(youth, lines), 10)
        assert await youth.locator("main[data-screen=ended] h1").count() == 1
        assert await youth.locator("#again").count() == 1
    finally:
        await ctx.close()


async def test_return_code_stays_and_the_ended_screen_shows_no_transcript(
        browser: Any, chat_server: ChatServer, console: Any) -> None:
    ctx, youth, conv, lines = await _chat_with_lines(browser, chat_server, console)
    try:
        if await console.get_attribute("#tool-return", "open") is None:
            await console.click("#tool-return > summary")
        await console.click("#offer-return")
        shown = await youth.wait_for_selector("main[data-screen=returncode] #passphrase",
                                              timeout=TIMEOUT_MS)
        words = (await shown.inner_text()).strip()
        await console.click("#end-conv")
        await console.click("#end-confirm")  # the end asks first (wrap-up dialog)
        await eventually(lambda: _ended_for_counsellor(console, conv), 10)

        # The code the youth is learning stays readable past the deadline
        await youth.clock.fast_forward(PAST_DEADLINE)
        await youth.evaluate("new Promise((r) => requestAnimationFrame(() => r(null)))")
        assert await youth.inner_text("#passphrase") == words

        # Done with the code: the end message, and no transcript
        await youth.click("#code-done")
        await youth.wait_for_selector("main[data-screen=ended]", timeout=TIMEOUT_MS)
        assert await _shows_none_of(youth, lines)
        assert await _shows_none_of(youth, [words])
    finally:
        await ctx.close()


async def _ended_for_counsellor(console: Any, conv: str) -> bool:
    return await console_state(console, conv) == "done"


# ------------------------------------------------------------ refused at start

@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory, neutral: NeutralSite
                   ) -> Iterator[ChatServer]:
    """A server that lets one address start one chat an hour."""
    require((DIST / "index.html").is_file(), "web_client/dist is not built")
    server = ChatServer(tmp_path_factory.mktemp("limited"), neutral.url,
                        settings={"rate_starts_per_hour": 1})
    yield server
    server.stop()


async def test_start_refused_by_the_rate_limit_shows_whom_to_call(
        browser: Any, limited_server: ChatServer) -> None:
    account = limited_server.add_staff(alias="Mira")
    login = await staff_login(limited_server.url, account.username, account.password,
                              await account.code())
    counsellor = ReferenceClient()
    await counsellor.connect(limited_server.url, "/staff", headers={"Cookie": login.cookie})
    await counsellor.duty(True)
    first = ReferenceClient()
    ctx = await browser.new_context(viewport=PHONE)
    try:
        # Given this address has spent its one start
        await first.connect(limited_server.url, "/youth")
        await first.start()

        # When the page's start is refused
        page = await ctx.new_page()
        await open_youth(page, limited_server)
        await page.click("#go-on")
        await page.wait_for_selector("main[data-screen=profile]", timeout=TIMEOUT_MS)
        await page.click("#skip")
        profile = "main[data-screen=profile]"
        await page.wait_for_selector(f"{profile} .notice:has-text('För många försök')",
                                     timeout=TIMEOUT_MS)

        # Then it shows 112 and the alternatives as tel: links
        assert await page.locator(f"{profile} .danger a.tel[href='tel:112']").count() == 1
        alternative = page.locator(f"{profile} .alternatives a.tel[href='tel:020505050']")
        assert await alternative.count() == 1
        assert await page.locator("#qx").is_visible()
    finally:
        await ctx.close()
        await first.close()
        await counsellor.close()
