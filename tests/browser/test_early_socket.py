"""The youth page opens its socket while its script is still on the way.

On slow 3G every request and the WebSocket handshake each cost a 2 s round
trip; a small inline script in <head> (web_client/src/youth/socket-early.js)
opens the socket and joins /youth as soon as the HTML is parsed, and the bundle
takes that socket over (src/youth/socket-takeover.js). Here the bundle is held
back by the test until the early socket has joined and got its pushed status,
and the page must then reach the queue over that one socket, having sent the
join once. If that socket is gone before the bundle comes, the bundle opens
its own."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio

from chatserver.client.reference import ReferenceClient, staff_login
from tests.browser.conftest import DIST, PHONE, ChatServer, NeutralSite, require
from tests.browser.helpers import TIMEOUT_MS
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

JOIN = "40/youth,"


@pytest.fixture(scope="module")
def early_server(tmp_path_factory: pytest.TempPathFactory, neutral: NeutralSite
                 ) -> Iterator[ChatServer]:
    """Pings every second, so that a held-back bundle sees several of them
    answered by the inline script before it takes the socket over."""
    require((DIST / "index.html").is_file(), "web_client/dist is not built")
    server = ChatServer(tmp_path_factory.mktemp("early"), neutral.url,
                        settings={"ping_interval_secs": 1, "ping_timeout_secs": 5})
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def counsellor(early_server: ChatServer) -> AsyncIterator[ReferenceClient]:
    account = early_server.add_staff(alias="Mira")
    login = await staff_login(early_server.url, account.username, account.password,
                              await account.code())
    client = ReferenceClient()
    await client.connect(early_server.url, "/staff", headers={"Cookie": login.cookie})
    await client.duty(True)
    yield client
    await client.disconnect()


@dataclass
class Sockets:
    """Every WebSocket the page opened, with the frames it sent and got."""

    sent: list[list[str]] = field(default_factory=list)
    got: list[list[str]] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        def on_ws(ws: Any) -> None:
            sent: list[str] = []
            got: list[str] = []
            self.sent.append(sent)
            self.got.append(got)
            ws.on("framesent", lambda payload: sent.append(str(payload)))
            ws.on("framereceived", lambda payload: got.append(str(payload)))

        page.on("websocket", on_ws)


async def _hold_scripts(page: Any) -> asyncio.Event:
    """Hold every script request of the page until the returned event is set."""
    release = asyncio.Event()

    async def held(route: Any) -> None:
        await release.wait()
        await route.continue_()

    await page.route("**/assets/*.js", held)
    return release


async def _to_queue(page: Any) -> None:
    await page.click("main[data-screen=safety] #go-on:not([disabled])", timeout=TIMEOUT_MS)
    await page.click("main[data-screen=profile] #skip", timeout=TIMEOUT_MS)
    await page.wait_for_selector("main[data-screen=waiting]", timeout=TIMEOUT_MS)


async def test_the_socket_joins_before_the_script_and_the_bundle_takes_it_over(
        browser: Any, early_server: ChatServer, counsellor: ReferenceClient) -> None:
    ctx = await browser.new_context(viewport=PHONE)
    page = await ctx.new_page()
    sockets = Sockets()
    sockets.attach(page)
    try:
        release = await _hold_scripts(page)
        await page.goto(early_server.url + "/", wait_until="commit")

        # With no script yet: the socket is open, has joined /youth, has the
        # status the server pushes behind the join, and keeps answering pings.
        def joined_and_pinged() -> bool:
            return bool(sockets.got) and any(f.startswith("40/youth,{") for f in sockets.got[0]) \
                and any(f.startswith('42/youth,["status"') for f in sockets.got[0]) \
                and sockets.sent[0].count("3") >= 3
        await eventually(joined_and_pinged, 20, every=0.05)
        assert await page.locator("#go-on[disabled]").count() == 1  # the bundle has not run

        release.set()
        await _to_queue(page)
        # One socket all the way, and one join on it (the bundle's own is dropped).
        assert len(sockets.sent) == 1
        assert sockets.sent[0].count(JOIN) == 1
        assert any('["start"' in f for f in sockets.sent[0])
    finally:
        await ctx.close()


async def test_if_the_early_socket_is_gone_the_bundle_opens_its_own(
        browser: Any, early_server: ChatServer, counsellor: ReferenceClient) -> None:
    ctx = await browser.new_context(viewport=PHONE)
    page = await ctx.new_page()
    opened: list[str] = []
    gone = asyncio.Event()

    async def first_closed(ws: Any) -> None:
        opened.append(ws.url)
        if len(opened) == 1:
            await ws.close()  # the early socket: gone before the bundle comes
            gone.set()
        else:
            ws.connect_to_server()

    try:
        release = await _hold_scripts(page)
        await page.route_web_socket(re.compile(r"/socket\.io/"), first_closed)
        await page.goto(early_server.url + "/", wait_until="commit")
        await asyncio.wait_for(gone.wait(), 20)
        release.set()
        await _to_queue(page)
        assert len(opened) == 2
    finally:
        await ctx.close()
