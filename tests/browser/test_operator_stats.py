"""The Statistics view of the operator page, in Chromium, against a real
server: the youth page asks for a Stockholm district only when Stockholm is
chosen; the counts then show as pictures (bars, small counts hidden) and, on
request, as numbers; the CSV downloads with the API's rows; the printable
summary hides the controls; a hand-entered count is saved and audited."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from chatserver.client.reference import ReferenceClient, staff_login
from chatserver.domain.stats import month_of
from tests.browser.conftest import DESKTOP, PHONE, REPO, ChatServer, NeutralSite
from tests.browser.helpers import TIMEOUT_MS, console_login, open_youth
from tests.browser.test_accessibility import axe
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def stats_server(tmp_path_factory: pytest.TempPathFactory, neutral: NeutralSite
                 ) -> Iterator[ChatServer]:
    # Counts reach the database at each flush: every second here, instead of
    # every 15 minutes.
    server = ChatServer(tmp_path_factory.mktemp("stats"), neutral.url,
                        settings={"stats_flush_secs": 1})
    yield server
    server.stop()


async def _api(server: ChatServer, cookie: str, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(
            server.url + path, headers={"Cookie": cookie}) as resp:
        return resp.status, await resp.text()


async def test_statistics_view_pictures_numbers_csv_print_and_manual_entry(
        browser: Any, stats_server: ChatServer, clients: list[ReferenceClient]) -> None:
    server = stats_server
    account = server.add_staff(role="counsellor", alias="Omar")
    login = await staff_login(server.url, account.username, account.password,
                              await account.code())
    counsellor = ReferenceClient()
    await counsellor.connect(server.url, "/staff", headers={"Cookie": login.cookie})
    clients.append(counsellor)
    await counsellor.duty(True)

    # 1. The youth page: a district only for Stockholm, a profession only for
    #    professionals.
    ctx = await browser.new_context(viewport=PHONE)
    try:
        page = await ctx.new_page()
        await open_youth(page, server)
        await page.click("#go-on")
        await page.wait_for_selector("main[data-screen=profile]", timeout=TIMEOUT_MS)
        assert await page.locator("select[name=district]").count() == 0
        await page.select_option("select[name=municipality]", "Solna")
        assert await page.locator("select[name=district]").count() == 0
        await page.select_option("select[name=municipality]", "Stockholm")
        await page.wait_for_selector("select[name=district]", timeout=TIMEOUT_MS)
        await page.select_option("select[name=district]", "Rinkeby-Kista")
        assert not await page.is_visible("select[name=profession]")
        await page.check("#f-pro")
        assert await page.is_visible("select[name=profession]")
        await page.uncheck("#f-pro")
        await page.click("#start")
        await page.wait_for_selector("main[data-screen=waiting]", timeout=TIMEOUT_MS)
    finally:
        await ctx.close()
    for _ in range(6):
        youth = ReferenceClient()
        await youth.connect(server.url, "/youth")
        clients.append(youth)
        await youth.start({"gender": "girl", "municipality": "Stockholm",
                           "district": "Rinkeby-Kista"})

    operator = server.add_staff(role="operator", alias="Ops")
    month = month_of(time.time())
    api_login = await staff_login(server.url, operator.username, operator.password,
                                  await operator.code())

    async def flushed() -> bool:
        _, text = await _api(server, api_login.cookie, f"/staff/api/stats?from={month}&to={month}")
        rows = json.loads(text).get("rows", [])
        return {"period": month, "dimension": "district", "value": "Rinkeby-Kista",
                "count": 7} in rows

    await eventually(flushed, 15)

    # 2. The operator's Statistics view.
    # bypass_csp: only so that axe can be injected.
    ctx = await browser.new_context(viewport=DESKTOP, accept_downloads=True, bypass_csp=True)
    try:
        page = await ctx.new_page()
        await console_login(page, server, operator, path="/operator")
        await page.click("#nav-stats")
        chart = page.locator("#stats-chart-district")
        await chart.wait_for(timeout=TIMEOUT_MS)
        bar = chart.locator("rect.bar[data-value='Rinkeby-Kista']")
        assert await bar.get_attribute("data-count") == "7"
        # Gender: one youth said nothing, six said girl. "Not given" (1) is
        # small and hidden; girl (6) would give it away (7 - 6) and is hidden too.
        gender = page.locator("#stats-chart-gender")
        assert await gender.locator("rect.hidden-count[data-value=unsaid]"
                                    ).get_attribute("data-count") == "<5"
        assert await gender.locator("rect.hidden-count[data-value=girl]"
                                    ).get_attribute("data-count") == ".."
        assert await page.locator("#stats-chart-contacts rect.bar").count() >= 1
        # Numbers only on request.
        assert not await page.is_visible("#stats-numbers")
        await page.click("#stats-numbers-toggle")
        await page.wait_for_selector("#stats-numbers", state="visible", timeout=TIMEOUT_MS)
        district_row = page.locator(
            "table[data-dimension=district] tr:has-text('Rinkeby-Kista') td")
        assert await district_row.first.inner_text() == "7"
        assert "1" not in [await c.inner_text()
                           for c in await page.locator("#stats-numbers td").all()]

        await axe(page, "the operator's Statistics view with its numbers")
        if os.environ.get("CHAT_SCREENSHOTS") == "1":  # docs/design/web-client.md
            await page.screenshot(
                path=str(REPO / "docs" / "screenshots" / "operator-statistics.png"),
                full_page=True)
        # In Arabic: right to left, the view's own texts.
        await page.select_option("#bar select.lang", "ar")
        await page.wait_for_selector("#nav-stats:has-text('الإحصاءات')", timeout=TIMEOUT_MS)
        assert await page.evaluate("document.documentElement.dir") == "rtl"
        assert await page.locator("#manual-h").inner_text() == "بيانات تُدخل يدوياً"
        await page.select_option("#bar select.lang", "en")
        await page.wait_for_selector("#stats-chart-district", timeout=TIMEOUT_MS)

        # 3. The CSV download: the API's rows, as a file.
        async with page.expect_download() as info:
            await page.click("#stats-csv")
        download = await info.value
        assert download.suggested_filename == f"statistics-{month}-{month}.csv"
        # Bytes as they are: CSV lines end in CRLF (RFC 4180).
        downloaded = (await download.path()).read_bytes().decode("utf-8")  # type: ignore[union-attr]
        status, from_api = await _api(server, api_login.cookie,
                                      f"/staff/api/stats.csv?from={month}&to={month}")
        assert status == 200 and downloaded == from_api
        assert downloaded.splitlines()[0] == "period,dimension,value,count"
        assert f"{month},district,Rinkeby-Kista,7" in downloaded.splitlines()

        # 4. The printable summary: figures and numbers, no controls.
        await page.click("#stats-numbers-toggle")  # numbers hidden on screen ...
        await page.emulate_media(media="print")
        assert await page.is_visible("#stats-numbers")  # ... but printed
        assert await page.is_visible("#stats-chart-district")
        for control in ("#stats-picker", "#manual-form", "#nav-stats", "#stats-csv"):
            assert not await page.is_visible(control), control
        await page.emulate_media(media="screen")

        # 5. A hand-entered count, then a correction: saved, shown, audited.
        await page.fill("#manual-month", month)
        await page.select_option("#manual-kind", "seminar")
        await page.fill("#manual-count", "3")
        await page.click("#manual-save")
        await page.wait_for_selector("#manual-status.ok", timeout=TIMEOUT_MS)
        seminar = page.locator("#stats-chart-outreach rect.bar[data-value=seminar]")
        await seminar.wait_for(timeout=TIMEOUT_MS)
        assert await seminar.get_attribute("data-count") == "3"
        await page.fill("#manual-count", "4")
        await page.click("#manual-save")
        await eventually(lambda: _count_is(seminar, "4"), 8)

        # 6. A year: contacts per month as twelve bars over time, this month's 7.
        await page.select_option("#stats-mode", "year")
        await page.fill("#stats-year", month[:4])
        await page.click("#stats-show")
        time_chart = page.locator("#stats-time-chart")
        await time_chart.wait_for(timeout=TIMEOUT_MS)
        assert await time_chart.get_attribute("data-bars") == "12"
        assert await time_chart.locator(f"rect.bar[data-label='{month}']"
                                        ).get_attribute("data-count") == "7"

        # 7. One professional starts: "<5" professionals hide the youth count
        #    beside them (".."), and the month's bar is hidden, but as "..":
        #    seven contacts and more are no "<5".
        pro = ReferenceClient()
        await pro.connect(server.url, "/youth")
        clients.append(pro)
        await pro.start({"professional": True, "workplace_municipality": "Solna"})

        async def professional_counted() -> bool:
            _, text = await _api(server, api_login.cookie,
                                 f"/staff/api/stats?from={month}&to={month}")
            return {"period": month, "dimension": "contacts", "value": "professional",
                    "count": "<5"} in json.loads(text).get("rows", [])

        await eventually(professional_counted, 15)
        await page.click("#stats-show")
        await eventually(lambda: _count_is(time_chart.locator(
            f"rect[data-label='{month}']"), ".."), 8)
    finally:
        await ctx.close()

    with sqlite3.connect(f"file:{server.data_dir / 'chatserver.sqlite3'}?mode=ro",
                         uri=True) as db:
        entries = db.execute("SELECT actor, detail FROM audit WHERE action = 'stats_manual'"
                             " ORDER BY seq").fetchall()
    assert [(a, json.loads(d)) for a, d in entries] == [
        (operator.username, {"month": month, "kind": "seminar", "new": 3}),
        (operator.username, {"month": month, "kind": "seminar", "new": 4, "old": 3}),
    ]


async def _count_is(locator: Any, want: str) -> bool:
    return bool(await locator.count()) and await locator.get_attribute("data-count") == want
