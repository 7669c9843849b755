"""The operator's "Partners" view and a counsellor's console in one real
Chromium each, against one real server: the operator adds, checks and edits
an entry, a bad number is refused in the form with nothing saved, and the
console's open referral list shows every change without a reload, with the
"no phone number listed" and "checked <date>" lines."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from chatserver.client.reference import ReferenceClient
from tests.browser.conftest import DESKTOP, ChatServer
from tests.browser.helpers import (
    TIMEOUT_MS,
    console_claim_first,
    console_duty_on,
    console_login,
)
from tests.browser.test_accessibility import axe
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def fill_entry(page: Any, **fields: str) -> None:
    for name, value in fields.items():
        if name == "kind":
            await page.select_option("#partner-form select[name=kind]", value)
        else:
            await page.fill(f"#pf-{name}", value)


async def text_of(page: Any, selector: str) -> str:
    """The element's text, or "" if there is none: one step, since a push may
    redraw the list between a lookup and a read."""
    return str(await page.evaluate(
        "(sel) => { const el = document.querySelector(sel); return el ? el.innerText : ''; }",
        selector))


async def row_text(page: Any, code: str) -> str:
    return await text_of(page, f"#partners-table tr[data-partner='{code}']")


async def console_item(page: Any, code: str) -> str:
    return await text_of(page, f"#partner-list li[data-partner='{code}']")


async def test_operator_edits_and_the_console_shows_it_without_reload(
        browser: Any, chat_server: ChatServer, clients: list[ReferenceClient]) -> None:
    console_ctx = await browser.new_context(viewport=DESKTOP)
    ops_ctx = await browser.new_context(viewport=DESKTOP)
    try:
        # A counsellor in a chat, with the referral list for Solna open.
        console = await console_ctx.new_page()
        navigations: list[str] = []
        console.on("framenavigated", lambda f: navigations.append(f.url)
                   if f == console.main_frame else None)
        await console_login(console, chat_server, chat_server.add_staff(alias="Sara"))
        await console_duty_on(console)
        youth = ReferenceClient()
        await youth.connect(chat_server.url, "/youth")
        clients.append(youth)
        await youth.start()
        await console_claim_first(console)
        await console.click("#tool-refer > summary")
        await console.fill("#tool-refer input[name=partner-query]", "Solna")
        await console.click("#partner-search")
        await console.wait_for_selector("#partner-list li[data-partner=soc-solna]",
                                        timeout=TIMEOUT_MS)
        assert await console_item(console, "tjejjour-solna") == ""
        loaded = len(navigations)

        # The operator opens "Partners" and adds an entry: first with a bad number.
        ops = await ops_ctx.new_page()
        await console_login(ops, chat_server, chat_server.add_staff(role="operator", alias="Ops"),
                            path="/operator")
        await ops.click("#nav-partners")
        await ops.wait_for_selector("#partners-table tr[data-partner=polisen]",
                                    timeout=TIMEOUT_MS)
        assert "Police" in await row_text(ops, "polisen")  # the kind by its name
        await ops.click("#partner-new")
        await fill_entry(ops, code="tjejjour-solna", name="Tjejjouren Solna", kind="shelter",
                         municipality="Solna", phone="08-XX", hours_sv="Tisdagar 18–21",
                         hours_en="Tuesdays 6–9 pm", words_sv="tjejchatt")
        await ops.click("#partner-save")
        error = await ops.wait_for_selector("#partner-error", timeout=TIMEOUT_MS)
        assert "Phone" in await error.inner_text()
        assert await ops.get_attribute("#pf-phone", "aria-invalid") == "true"
        assert await ops.locator("#partners-table tr[data-partner=tjejjour-solna]").count() == 0
        await ops.fill("#pf-phone", "")  # no confirmed number: none is invented
        await ops.click("#partner-save")
        await ops.wait_for_selector("#partners-table tr[data-partner=tjejjour-solna]",
                                    timeout=TIMEOUT_MS)
        assert "No phone number listed" in await row_text(ops, "tjejjour-solna")

        # The console's open list shows it at once, unchecked and without a number.
        await eventually(lambda: _has(console, "tjejjour-solna", "No phone number listed"), 10)
        text = await console_item(console, "tjejjour-solna")
        assert "Not checked yet" in text and "Shelter" in text

        # Marked checked, then given a number: both reach the console. A new
        # number nobody has checked takes the mark away until it is marked again.
        await ops.click("#partners-table tr[data-partner=tjejjour-solna] [data-action=verify]")
        await eventually(lambda: _has(ops, "tjejjour-solna", "Checked", table=True), 10)
        await eventually(lambda: _has(console, "tjejjour-solna", "Checked"), 10)
        await ops.click("#partners-table tr[data-partner=tjejjour-solna] [data-action=edit]")
        await ops.fill("#pf-phone", "08-120 00 00")
        await ops.click("#partner-save")
        await eventually(lambda: _has(console, "tjejjour-solna", "08-120 00 00"), 10)
        assert "Not checked yet" in await console_item(console, "tjejjour-solna")
        await ops.click("#partners-table tr[data-partner=tjejjour-solna] [data-action=verify]")
        await eventually(lambda: _has(console, "tjejjour-solna", "Checked"), 10)
        assert len(navigations) == loaded, "the console reloaded"

        # Retired: gone from the console's list, kept (marked) in the operator's.
        await ops.click("#partners-table tr[data-partner=tjejjour-solna] [data-action=retire]")
        await eventually(lambda: _gone(console, "tjejjour-solna"), 10)
        await eventually(lambda: _has(ops, "tjejjour-solna", "retired", table=True), 10)
        # The whole directory downloads for the annual check.
        async with ops.expect_download() as download:
            await ops.click("#partners-csv")
        saved = Path(await (await download.value).path())
        assert "tjejjour-solna" in await asyncio.to_thread(saved.read_text, "utf-8")
    finally:
        await console_ctx.close()
        await ops_ctx.close()


async def _has(page: Any, code: str, text: str, table: bool = False) -> bool:
    found = await row_text(page, code) if table else await console_item(page, code)
    return text in found


async def _gone(page: Any, code: str) -> bool:
    return await console_item(page, code) == ""


async def test_the_partners_view_and_its_form_pass_axe(browser: Any,
                                                       chat_server: ChatServer) -> None:
    ctx = await browser.new_context(bypass_csp=True, viewport=DESKTOP)  # axe is injected
    try:
        page = await ctx.new_page()
        await console_login(page, chat_server, chat_server.add_staff(role="admin", alias="Adm"),
                            path="/operator")
        await page.click("#nav-partners")
        await page.wait_for_selector("#partners-table tr[data-partner=polisen]",
                                     timeout=TIMEOUT_MS)
        await axe(page, "partners view")
        await page.click("#partner-new")
        await fill_entry(page, code="polisen", name="Polisen igen", kind="police",
                         hours_sv="Alltid", hours_en="Always")
        await page.click("#partner-save")
        await page.wait_for_selector("#partner-error", timeout=TIMEOUT_MS)
        assert "taken" in await page.inner_text("#partner-error")
        await axe(page, "partner form with an error")
    finally:
        await ctx.close()
