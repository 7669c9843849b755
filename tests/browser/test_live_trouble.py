"""The shared live state out of reach, in real Chromium: a node on Redis whose
Redis is killed answers every state-changing call `unavailable` with whom to
call (docs/protocol.md). The youth page must then say plainly that the chat
has trouble and show the numbers from the error — never a spinner — keep the
message it could not send marked "not sent" (not "sent"), and, once Redis is
back (restarted empty on the same port), send it by itself and drop the
notice without a reload. The console shows its banner and clears it the same
way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import DIST, PHONE, ChatServer, NeutralSite, require
from tests.browser.helpers import (
    TIMEOUT_MS,
    Wire,
    console_claim_first,
    console_duty_on,
    console_login,
    console_sees,
    console_send,
    storage_report,
    youth_sees,
    youth_send,
    youth_to_queue,
    youth_wait_chat,
)
from tests.browser.test_accessibility import axe
from tests.helpers.redis_server import RedisServer, redis_server
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

# Hang guards only. The trouble shows after the server's own short wait for
# Redis (about 2 s); it ends at the first retry after Redis is back (the
# pages try every 4 s), on a machine that may be at load 5-8.
TROUBLE_BOUND_MS = 30_000
RECOVERY_BOUND_MS = 60_000


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="module")
def redis_node(tmp_path_factory: pytest.TempPathFactory, neutral: NeutralSite,
                redis: RedisServer) -> Iterator[ChatServer]:
    """One node whose live state is in Redis (a deployment of several nodes,
    cut to one: the pages see the same answers)."""
    require((DIST / "index.html").is_file(), "web_client/dist is not built")
    server = ChatServer(tmp_path_factory.mktemp("live-trouble"), neutral.url, settings={
        "redis_url": redis.url, "node_id": "n1", "secret_redis_password": redis.password,
        # The youth's seat outlives the outage (config/test.toml has 5 s).
        "grace_secs": 120})
    yield server
    server.stop()


def _unavailable_answers(wire: Wire) -> int:
    """How many frames the youth's page got that answer `unavailable`."""
    return sum('"error":"unavailable"' in f for f in wire.frames)


def _log_tail(server: ChatServer, lines: int = 40) -> str:
    text = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
    worth = [ln for ln in text.splitlines() if " WARNING " in ln or " ERROR " in ln
             or "Traceback" in ln]
    return "\n".join(worth[-lines:])


async def test_youth_and_console_show_trouble_and_recover_without_reload(
        browser: Any, redis_node: ChatServer, redis: RedisServer) -> None:
    account = redis_node.add_staff(alias="Mira")
    # bypass_csp: axe-core is injected as a script (test_accessibility.py).
    console_ctx = await browser.new_context(locale="en-GB", bypass_csp=True)
    youth_ctx = await browser.new_context(viewport=PHONE, bypass_csp=True)
    try:
        console = await console_ctx.new_page()
        await console_login(console, redis_node, account)
        await console_duty_on(console)
        youth = await youth_ctx.new_page()
        wire = Wire()
        wire.attach(youth)
        await youth_to_queue(youth, redis_node)
        conv = await console_claim_first(console)
        await youth_wait_chat(youth)
        await youth_send(youth, "hej före")
        await console_sees(console, conv, "hej före")
        await console_send(console, conv, "hej från Mira")
        await youth_sees(youth, "hej från Mira")

        redis.kill()

        # The youth sends: the chat has trouble. Whom to call, from the
        # error's data, as tel: links; the message is "not sent".
        await youth.fill("#composer", "hej under")
        await youth.click("#send")
        try:
            await youth.wait_for_selector("main[data-screen=chat] #trouble[role=alert]",
                                          timeout=TROUBLE_BOUND_MS)
        except Exception as exc:
            raise AssertionError(f"no trouble state; server log:\n{_log_tail(redis_node)}"
                                 ) from exc
        trouble = youth.locator("#trouble")
        assert "Chatten har problem just nu" in await trouble.inner_text()
        assert await trouble.locator("a[href='tel:112']").count() >= 1
        assert await trouble.locator("a[href='tel:020505050']").count() == 1
        unsent = youth.locator("#log li.out", has_text="hej under")
        assert await unsent.locator("[data-state=failed]").count() == 1
        assert await unsent.locator("[data-state=sent]").count() == 0
        # Never a spinner: the page says what is wrong, nothing busy.
        assert await youth.locator("[aria-busy=true], .spinner").count() == 0
        await axe(youth, "youth chat in trouble")

        # The console's own call gets the same answer: the banner.
        await console.click(f"#tab-{conv}")
        await console.fill("#composer", "svar under")
        await console.click("#send")
        await console.wait_for_selector("#trouble-banner[role=alert]", timeout=TROUBLE_BOUND_MS)
        assert "trouble reaching its shared state" in await console.inner_text("#trouble-banner")
        await axe(console, "console in trouble")
        await console.wait_for_selector(
            "#log li.out:has-text('svar under') [data-state=failed]", timeout=TIMEOUT_MS)

        # Still in trouble after the page's next try has its answer: nothing
        # clears it by mistake.
        answered = _unavailable_answers(wire)
        await eventually(lambda: _unavailable_answers(wire) > answered, TROUBLE_BOUND_MS / 1000)
        assert await youth.locator("#trouble").count() == 1
        assert await unsent.locator("[data-state=sent]").count() == 0

        redis.start()  # the same port, empty: what a crashed Redis comes back as

        try:
            await youth.wait_for_selector("#log li.out:has-text('hej under') [data-state=sent]",
                                          timeout=RECOVERY_BOUND_MS)
            await youth.wait_for_selector("#trouble", state="detached", timeout=RECOVERY_BOUND_MS)
            await console_sees(console, conv, "hej under")
            await console.wait_for_selector("#trouble-banner", state="detached",
                                            timeout=RECOVERY_BOUND_MS)
            await console.wait_for_selector(
                "#log li.out:has-text('svar under') [data-state=sent]", timeout=RECOVERY_BOUND_MS)
            await youth_sees(youth, "svar under")
        except Exception as exc:
            raise AssertionError(f"no recovery; server log:\n{_log_tail(redis_node)}") from exc

        # And the chat goes on as before.
        await youth_send(youth, "hej efter")
        await console_sees(console, conv, "hej efter")
        # Nothing of it on the youth's device.
        report = await storage_report(youth)
        assert report == {"cookie": "", "local": 0, "session": 0, "idb": 0, "sw": 0,
                          "caches": 0}, report
    finally:
        await youth_ctx.close()
        await console_ctx.close()
