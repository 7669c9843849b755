"""A counsellor's console that is reloaded (or crashes) mid-conversation gets
its conversation back (docs/protocol.md, "Re-attach after a reload"): real
Chromium for both pages, the real server in a subprocess.

The console keeps its keys and resume secrets in page memory only, so a new
page has none: it learns its seats from the server and takes each back under
a new key. Meanwhile the youth's page says it is waiting for the counsellor
and shows what it sends as not yet delivered; when the console is back it
says so, sends again what the lost key could not open, and the chat goes on
end to end both ways.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import DIST, PHONE, REPO, ChatServer, NeutralSite, require
from tests.browser.helpers import (
    TIMEOUT_MS,
    console_claim_first,
    console_duty_on,
    console_login,
    console_sees,
    console_send,
    youth_sees,
    youth_send,
    youth_to_queue,
    youth_wait_chat,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

CATALOGS = REPO / "web_client" / "src" / "i18n" / "sv"
YOUTH_SV = json.loads((CATALOGS / "youth.json").read_text(encoding="utf-8"))["chat"]
# A new console page starts in Swedish (the default) until the counsellor picks.
RELOADED_SV = json.loads((CATALOGS / "staff.json").read_text(encoding="utf-8")
                         )["convs"]["reloaded"]


@pytest.fixture(scope="module")
def reattach_server(tmp_path_factory: pytest.TempPathFactory, neutral: NeutralSite
                    ) -> Iterator[ChatServer]:
    """The seat is kept a minute (test.toml's 5 s would race a slow reload);
    the youth is told after one second that the counsellor's page is gone."""
    require((DIST / "index.html").is_file(), "web_client/dist is not built")
    server = ChatServer(tmp_path_factory.mktemp("reattach"), neutral.url,
                        settings={"grace_secs": 60, "presence_grace_secs": 1})
    yield server
    server.stop()


def _sv(key: str, alias: str) -> str:
    return str(YOUTH_SV[key]).replace("{alias}", alias)


async def test_a_reloaded_console_gets_its_conversation_back(
        browser: Any, reattach_server: ChatServer) -> None:
    server = reattach_server
    account = server.add_staff(alias="Mira")
    youth_ctx = await browser.new_context(viewport=PHONE)
    staff_ctx = await browser.new_context()
    errors: list[str] = []
    try:
        staff = await staff_ctx.new_page()
        youth = await youth_ctx.new_page()
        for p in (staff, youth):
            p.on("pageerror", lambda e: errors.append(str(e)))
        await console_login(staff, server, account)
        await console_duty_on(staff)
        await youth_to_queue(youth, server)
        conv = await console_claim_first(staff)
        await youth_wait_chat(youth)
        await youth_send(youth, "hej innan")
        await console_sees(staff, conv, "hej innan")
        await console_send(staff, conv, "hej från Mira")
        await youth_sees(youth, "hej från Mira")

        # The console's page goes (a crash): the youth is told they wait for
        # Mira, and what they write meanwhile is "not yet delivered", not "sent".
        await staff.close()
        away = await youth.wait_for_selector("#counsellor-away", timeout=TIMEOUT_MS)
        assert await away.inner_text() == _sv("counsellor_away", "Mira")
        await youth.fill("#composer", "är du kvar?")
        await youth.click("#send")
        held = "#log li.out:has-text('är du kvar?') [data-state=held]"
        await youth.wait_for_selector(held, timeout=TIMEOUT_MS)
        assert (await youth.inner_text(held)).endswith(YOUTH_SV["held"])

        # A new console page with the same session takes the seat back.
        staff = await staff_ctx.new_page()
        staff.on("pageerror", lambda e: errors.append(str(e)))
        await staff.goto(server.url + "/console")
        await staff.wait_for_selector(f"#tab-{conv}[aria-current=true]", timeout=TIMEOUT_MS)
        notice = await staff.wait_for_selector("#log li.sys", timeout=TIMEOUT_MS)
        assert await notice.inner_text() == RELOADED_SV
        assert await staff.locator("#log li:has-text('hej innan')").count() == 0
        # The youth's page: told, the wait is over, the held message sent again.
        await youth.wait_for_selector(
            f"#log li.sys:has-text('{_sv('reconnected', 'Mira')}')", timeout=TIMEOUT_MS)
        await youth.wait_for_selector("#counsellor-away", state="detached", timeout=TIMEOUT_MS)
        await youth.wait_for_selector("#log li.out:has-text('är du kvar?') [data-state=sent]",
                                      timeout=TIMEOUT_MS)
        await console_sees(staff, conv, "är du kvar?")
        # And on it goes, both ways, end to end.
        await console_send(staff, conv, "ja, jag är här")
        await youth_sees(youth, "ja, jag är här")
        await youth_send(youth, "skönt")
        await console_sees(staff, conv, "skönt")

        # A plain reload of the console, mid-conversation: the same again.
        await staff.reload()
        await staff.wait_for_selector(f"#tab-{conv}[aria-current=true]", timeout=TIMEOUT_MS)
        notice = await staff.wait_for_selector("#log li.sys", timeout=TIMEOUT_MS)
        assert await notice.inner_text() == RELOADED_SV
        await console_send(staff, conv, "efter omladdningen")
        await youth_sees(youth, "efter omladdningen")
        await youth_send(youth, "fortfarande här")
        await console_sees(staff, conv, "fortfarande här")
        assert await youth.locator(
            f"#log li.sys:has-text('{_sv('reconnected', 'Mira')}')").count() == 2
        assert await youth.locator("#log li.msg.bad").count() == 0
        assert await staff.locator("#log li.msg.bad").count() == 0
        assert errors == []
    finally:
        await youth_ctx.close()
        await staff_ctx.close()
