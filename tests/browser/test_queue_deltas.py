"""The console keeps its queue from one whole view and then the changes
(docs/protocol.md, "Queue views"), in real Chromium against a real server
process: a change lost on the way (dropped from the WebSocket by the test) is
noticed at the next one, the console asks for the whole view again
(`queue_sync`) and lists the right youths; through arrivals, claims, a youth
leaving and an end, the count shown always equals the entries listed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from chatserver.client.reference import ReferenceClient
from tests.browser.conftest import DESKTOP, ChatServer, NeutralSite, require
from tests.browser.helpers import TIMEOUT_MS, console_duty_on, console_login
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def delta_chat(tmp_path_factory: pytest.TempPathFactory, neutral: NeutralSite
               ) -> Iterator[ChatServer]:
    from tests.browser.conftest import DIST
    require((DIST / "index.html").is_file(), "web_client/dist is not built")
    server = ChatServer(tmp_path_factory.mktemp("chatserver-deltas"), neutral.url, {})
    yield server
    server.stop()


class Tap:
    """The console's socket, passed through; drops the next `queue_delta`
    when armed, and notes what the console sends."""

    def __init__(self) -> None:
        self.armed = False
        self.dropped: list[str] = []
        self.sent: list[str] = []

    def route(self, ws: Any) -> None:
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            if isinstance(message, str):
                self.sent.append(message)
            server.send(message)

        def from_server(message: str | bytes) -> None:
            if self.armed and isinstance(message, str) and '["queue_delta"' in message:
                self.armed = False
                self.dropped.append(message)
                return
            ws.send(message)

        ws.on_message(from_page)
        server.on_message(from_server)


async def listed(page: Any) -> set[str]:
    return set(await page.eval_on_selector_all(
        "#queue-list .queue-item", "items => items.map(i => i.dataset.conversation)"))


async def shows(page: Any, expected: set[str]) -> None:
    """The list holds exactly ``expected`` and the count says as many."""
    async def right() -> bool:
        total = await page.inner_text("#queue-total")
        return await listed(page) == expected and f"{len(expected)} waiting" in total
    await eventually(right, TIMEOUT_MS / 1000)


async def test_a_missed_change_is_repaired_and_the_count_is_the_list(
        browser: Any, delta_chat: ChatServer, clients: list[ReferenceClient]) -> None:
    ctx = await browser.new_context(viewport=DESKTOP)
    tap = Tap()
    try:
        page = await ctx.new_page()
        await page.route_web_socket(re.compile(r"/socket\.io/"), tap.route)
        await console_login(page, delta_chat, delta_chat.add_staff(alias="Mira"))
        await console_duty_on(page)

        async def arrive() -> tuple[ReferenceClient, str]:
            youth = ReferenceClient()
            await youth.connect(delta_chat.url, "/youth")
            clients.append(youth)
            return youth, str((await youth.start())["conversation"])

        youths = [await arrive() for _ in range(3)]
        waiting = {conv for _, conv in youths}
        await shows(page, waiting)
        assert not any("queue_sync" in m for m in tap.sent)  # changes applied, no resync

        # A change is lost: the console still shows the old list...
        tap.armed = True
        youths.append(await arrive())
        waiting.add(youths[-1][1])
        await eventually(lambda: tap.dropped, TIMEOUT_MS / 1000)
        assert youths[-1][1] in tap.dropped[0]
        assert await listed(page) == waiting - {youths[-1][1]}
        # ...until the next change does not fit it: the console asks again
        youths.append(await arrive())
        waiting.add(youths[-1][1])
        await shows(page, waiting)
        assert sum("queue_sync" in m for m in tap.sent) == 1

        # Claims, a youth leaving, an end: the count follows the list
        first = youths[0][1]
        await page.click(f"#claim-{first}")
        await page.wait_for_selector(f"#tab-{first}[aria-current=true]", timeout=TIMEOUT_MS)
        waiting.discard(first)
        await shows(page, waiting)
        leaver, gone = youths[1]
        await leaver.leave(conversation=gone)
        waiting.discard(gone)
        await shows(page, waiting)
        youths.append(await arrive())
        waiting.add(youths[-1][1])
        await shows(page, waiting)
        await page.click("#take-next")
        await page.wait_for_selector("[id^=tab-] >> nth=1", timeout=TIMEOUT_MS)
        waiting -= set(await page.eval_on_selector_all(
            "[id^=tab-]", "tabs => tabs.map(t => t.id.slice(4))"))
        assert len(waiting) == 3
        await shows(page, waiting)
        assert sum("queue_sync" in m for m in tap.sent) == 1  # no other resync
    finally:
        await ctx.close()
