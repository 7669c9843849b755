"""The Staff work view of the operator page, in Chromium, against a real
server: a counsellor's real duty and claim show in the per-member summary and
in the entries, the filters narrow them, both CSV files download with the
API's content, and the chain's state is shown."""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from chatserver.client.reference import ReferenceClient, staff_login
from tests.browser.conftest import DESKTOP, REPO, ChatServer, NeutralSite
from tests.browser.helpers import TIMEOUT_MS, console_login
from tests.browser.test_accessibility import axe

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def worklog_server(tmp_path_factory: pytest.TempPathFactory, neutral: NeutralSite
                   ) -> Iterator[ChatServer]:
    server = ChatServer(tmp_path_factory.mktemp("worklog"), neutral.url)
    yield server
    server.stop()


async def _api(server: ChatServer, cookie: str, path: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(
            server.url + path, headers={"Cookie": cookie}) as resp:
        assert resp.status == 200
        return await resp.text()


async def _download(page: Any, selector: str) -> tuple[str, str]:
    async with page.expect_download() as info:
        await page.click(selector)
    download = await info.value
    data = (await download.path()).read_bytes().decode("utf-8")
    return download.suggested_filename, data


async def test_staff_work_view_summary_filters_csv_and_chain(
        browser: Any, worklog_server: ChatServer, clients: list[ReferenceClient]) -> None:
    server = worklog_server
    account = server.add_staff(role="counsellor", alias="Omar")
    login = await staff_login(server.url, account.username, account.password,
                              await account.code())
    counsellor = ReferenceClient()
    await counsellor.connect(server.url, "/staff", headers={"Cookie": login.cookie})
    clients.append(counsellor)
    await counsellor.duty(True)
    youth = ReferenceClient()
    await youth.connect(server.url, "/youth")
    clients.append(youth)
    conv = (await youth.start())["conversation"]
    await counsellor.claim(conv)
    await counsellor.duty(False)

    operator = server.add_staff(role="operator", alias="Ops")
    # The view opens on the last 30 days.
    day = datetime.fromtimestamp(time.time(), UTC).date()
    today, start = day.isoformat(), (day - timedelta(days=29)).isoformat()
    ctx = await browser.new_context(viewport=DESKTOP, accept_downloads=True, bypass_csp=True)
    try:
        page = await ctx.new_page()
        await console_login(page, server, operator, path="/operator")
        await page.click("#nav-worklog")
        row = page.locator(f"#worklog-summary tr[data-actor='{account.username}'] td")
        await row.first.wait_for(timeout=TIMEOUT_MS)
        cells = [await c.inner_text() for c in await row.all()]
        # duty hours, taken, transfers, referrals, invites, return codes
        assert cells[1:] == ["1", "0 / 0", "0", "0", "0"]
        assert "intact" in await page.locator("#worklog-chain.ok").inner_text()
        assert await page.locator("#worklog-entries tbody tr").count() >= 4
        await axe(page, "the operator's Staff work view")
        if os.environ.get("CHAT_SCREENSHOTS") == "1":  # docs/design/web-client.md
            await page.screenshot(path=str(REPO / "docs" / "screenshots" / "operator-worklog.png"),
                                  full_page=True)

        # Filter: this counsellor's claims only.
        await page.select_option("#worklog-actor", account.username)
        await page.select_option("#worklog-action", "claim")
        await page.click("#worklog-show")
        await page.wait_for_selector("#worklog-entries-h:has-text('(1)')", timeout=TIMEOUT_MS)
        only = page.locator("#worklog-entries tbody tr td")
        texts = [await c.inner_text() for c in await only.all()]
        assert texts[1:3] == [account.username, "Took a conversation"]
        assert texts[3].startswith("c-") and conv not in texts[3]  # a pseudonym, not the id

        # The CSV files: the filtered entries and the summary, as the API gives them.
        name, entries = await _download(page, "#worklog-csv")
        assert name == f"staff-work-{start}-{today}.csv"
        lines = entries.splitlines()
        assert lines[0] == "seq,at,actor,action,conversation,detail" and len(lines) == 2
        assert f",{account.username},claim,{texts[3]}," in lines[1]
        name, summary = await _download(page, "#worklog-summary-csv")
        assert name == f"staff-summary-{start}-{today}.csv"
        rows = {r[0]: r for r in csv.reader(io.StringIO(summary))}
        assert rows[account.username][2] == "1"  # claims
        api = await staff_login(server.url, operator.username, operator.password,
                                await operator.code())
        assert summary == await _api(server, api.cookie,
                                     f"/staff/api/worklog/summary.csv?from={start}&to={today}")

        # The exports are audited, and show up under their own action.
        await page.select_option("#worklog-actor", operator.username)
        await page.select_option("#worklog-action", "")
        await page.click("#worklog-show")
        await page.wait_for_selector("#worklog-entries td:has-text('Log exported')",
                                     timeout=TIMEOUT_MS)
        # In Swedish, the view's own texts.
        await page.select_option("#bar select.lang", "sv")
        await page.wait_for_selector("#nav-worklog:has-text('Personalens arbete')",
                                     timeout=TIMEOUT_MS)
        assert "hel" in await page.locator("#worklog-chain").inner_text()
    finally:
        await ctx.close()
