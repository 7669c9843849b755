"""A full server in real Chromium: when the node holds as many anonymous
connections as it may, a youth's connect to ``/youth`` is refused with
``server_full`` and the numbers to call. The page must never leave the youth
at "Connecting…": it shows that the chat is full, the emergency number and the
alternatives as ``tel:`` links, keeps the quick exit, and its "Try again"
really connects again once a place is free."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from chatserver.client.reference import CallFailed, ReferenceClient, staff_login
from tests.browser.conftest import DIST, PHONE, ChatServer, NeutralSite, require
from tests.browser.helpers import TIMEOUT_MS, open_youth, youth_send
from tests.browser.test_accessibility import axe
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

FULL = "main[data-screen=full]"


@pytest.fixture(scope="module")
def full_server(tmp_path_factory: pytest.TempPathFactory, neutral: NeutralSite
                ) -> Iterator[ChatServer]:
    """A server that holds one anonymous connection at most."""
    require((DIST / "index.html").is_file(), "web_client/dist is not built")
    server = ChatServer(tmp_path_factory.mktemp("full"), neutral.url,
                        # A dropped youth's place is kept long enough for the
                        # refusal and the retry of the second test.
                        settings={"max_anonymous_connections": 1, "grace_secs": 60})
    yield server
    server.stop()


async def _counsellor_on_duty(server: ChatServer) -> ReferenceClient:
    account = server.add_staff(alias="Mira")
    login = await staff_login(server.url, account.username, account.password,
                              await account.code())
    client = ReferenceClient()
    await client.connect(server.url, "/staff", headers={"Cookie": login.cookie})
    await client.duty(True)
    return client


async def _continue_to_full(page: Any, server: ChatServer) -> None:
    """Open the youth page and press "continue" on the safety page, as a youth would."""
    await open_youth(page, server)
    await page.click("#go-on")
    await page.wait_for_selector(FULL, timeout=TIMEOUT_MS)


async def _try_again_until_in(page: Any) -> None:
    """Press "Try again" until the page gets in. The place was freed by a
    disconnect the server handles on its own time; each press is one real
    connect, and the next press waits until the last one has its answer."""
    async def attempt() -> bool:
        await page.click(f"{FULL} #retry")
        await page.wait_for_selector(
            f"main[data-screen=profile], {FULL} #retry:not([disabled])", timeout=TIMEOUT_MS)
        return await page.locator("main[data-screen=profile]").count() == 1

    await eventually(attempt, 20, every=0.1)


async def _claim_newest(counsellor: ReferenceClient) -> None:
    """Claim this test's youth: the newest entry (an earlier test's youth may
    be back in the queue for the grace period, with its older arrival)."""
    await counsellor.wait_for(lambda: bool(counsellor.queue.get("entries")), 10)
    newest = max(counsellor.queue["entries"], key=lambda e: e["since"])
    await counsellor.claim(newest["conversation"])


async def test_full_server_shows_whom_to_call_and_try_again_gets_in(
        browser: Any, full_server: ChatServer, neutral: NeutralSite) -> None:
    counsellor = await _counsellor_on_duty(full_server)
    occupier = ReferenceClient()
    await occupier.connect(full_server.url, "/youth")  # the one place
    contexts = []
    errors: list[str] = []
    try:
        async def youth_page() -> Any:
            ctx = await browser.new_context(viewport=PHONE, bypass_csp=True)  # for axe
            contexts.append(ctx)
            page = await ctx.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            return page

        # The quick exit works on the full screen
        leaving = await youth_page()
        await _continue_to_full(leaving, full_server)
        before = len(neutral.arrivals())
        await leaving.click("#qx")
        await leaving.wait_for_url(neutral.url, timeout=TIMEOUT_MS)
        assert len(neutral.arrivals()) > before

        # Given the one place taken, a youth continues past the safety page
        page = await youth_page()
        await _continue_to_full(page, full_server)

        # Then the page says the chat is full and whom to call, as tel: links
        assert await page.text_content(f"{FULL} h1") == "Chatten är full just nu"
        assert await page.locator(f"{FULL} a.tel[href='tel:112']").count() >= 1
        alternative = page.locator(f"{FULL} .alternatives a.tel[href='tel:020505050']")
        assert await alternative.count() == 1
        assert "020-50 50 50" in (await alternative.text_content() or "")
        assert await page.locator("#qx").is_visible()

        # "Try again" while the place is still taken: a real try, refused again
        await page.click(f"{FULL} #retry")
        await page.wait_for_selector(f"{FULL} .notice:has-text('fortfarande full')",
                                     timeout=TIMEOUT_MS)
        await axe(page, "server-full screen")
        # In Arabic too, right to left, with the same numbers
        await page.select_option("#bar select.lang", "ar")
        await page.wait_for_selector("html[lang=ar][dir=rtl]", state="attached",
                                     timeout=TIMEOUT_MS)
        assert await page.text_content(f"{FULL} h1") == "الدردشة ممتلئة الآن"
        assert await alternative.count() == 1

        # When the place is freed, "Try again" gets in and a chat can start
        await occupier.close()
        await _try_again_until_in(page)
        await page.click("#skip")
        await page.wait_for_selector("main[data-screen=waiting] #queue-live .position",
                                     timeout=TIMEOUT_MS)
        await _claim_newest(counsellor)
        await page.wait_for_selector("main[data-screen=chat] #send:not([disabled])",
                                     timeout=TIMEOUT_MS)
        assert not errors, errors
    finally:
        for ctx in contexts:
            await ctx.close()
        await occupier.close()
        await counsellor.close()


async def test_a_youth_dropped_mid_chat_keeps_knocking_while_the_server_is_full(
        browser: Any, full_server: ChatServer) -> None:
    """The youth's connection drops mid-chat and someone else takes the free
    place: the reconnect is refused (socket.io would never try again after a
    refusal), so the page keeps trying and resumes once a place is free."""
    counsellor = await _counsellor_on_duty(full_server)
    occupier = ReferenceClient()
    ctx = await browser.new_context(viewport=PHONE)
    sockets: list[Any] = []
    received: list[str] = []
    blocked = False

    async def track(ws: Any) -> None:
        if blocked:  # the network is down for this page
            await ws.close()
            return
        server = ws.connect_to_server()
        ws.on_message(lambda m: server.send(m))

        def down(m: Any) -> None:
            received.append(str(m))
            ws.send(m)
        server.on_message(down)
        sockets.append(ws)

    async def polling(route: Any) -> None:
        await (route.abort() if blocked else route.continue_())

    async def occupy() -> bool:
        try:
            await occupier.connect(full_server.url, "/youth")
        except CallFailed as exc:
            assert exc.code == "server_full", exc.code
            return False
        return True

    try:
        page = await ctx.new_page()
        await page.route_web_socket(re.compile(r".*/socket\.io/.*"), track)
        await page.route(re.compile(r".*/socket\.io/.*transport=polling.*"), polling)
        # Given a youth in a chat (the previous test's page may still hold the place)
        await open_youth(page, full_server)
        await page.click("#go-on")
        await page.wait_for_selector("main[data-screen=profile], main[data-screen=full]",
                                     timeout=TIMEOUT_MS)
        if await page.locator(FULL).count():
            await _try_again_until_in(page)
        await page.click("#skip")
        await page.wait_for_selector("main[data-screen=waiting]", timeout=TIMEOUT_MS)
        await _claim_newest(counsellor)
        await page.wait_for_selector("main[data-screen=chat] #send:not([disabled])",
                                     timeout=TIMEOUT_MS)

        # When the connection drops and someone else takes the freed place
        blocked = True
        await sockets[-1].close()
        await page.wait_for_selector(".offline", timeout=TIMEOUT_MS)
        await eventually(occupy, 10, every=0.1)
        refusals = sum('"server_full"' in m for m in received)
        blocked = False
        # the page's reconnect is refused as full, and it keeps the chat screen
        await eventually(lambda: sum('"server_full"' in m for m in received) > refusals, 15)
        assert await page.locator("main[data-screen=chat] .offline").count() == 1

        # Then, once the place is free again, the page gets back in by itself
        await occupier.close()
        await page.wait_for_selector(".offline", state="detached", timeout=30_000)
        await youth_send(page, "tillbaka")
    finally:
        await ctx.close()
        await occupier.close()
        await counsellor.close()
