"""The youth privacy notice on the safety page, in real Chromium: it opens in
place from the safety page in Swedish and in English, says what is kept
(counts only) and what never is, and opening it leaves no trace: no
navigation, no history entry, no storage (docs/privacy.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import PHONE, ChatServer
from tests.browser.helpers import TIMEOUT_MS, open_youth

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

I18N = Path(__file__).resolve().parents[2] / "web_client" / "src" / "i18n"


def safety_texts(code: str) -> dict[str, str]:
    youth = json.loads((I18N / code / "youth.json").read_text(encoding="utf-8"))
    return youth["safety"]


async def test_the_privacy_notice_opens_in_place_in_swedish_and_english(
        browser: Any, chat_server: ChatServer) -> None:
    ctx = await browser.new_context(viewport=PHONE)
    try:
        page = await ctx.new_page()
        await open_youth(page, chat_server)
        url = page.url
        history = await page.evaluate("history.length")
        for code in ("sv", "en"):
            texts = safety_texts(code)
            if code != "sv":
                await page.select_option("#lang", code)
            summary = page.locator(f"#privacy summary:has-text('{texts['privacy_heading']}')")
            await summary.wait_for(timeout=TIMEOUT_MS)
            kept = page.locator("#privacy p").first
            assert not await kept.is_visible()  # closed until asked for
            await summary.click()
            await kept.wait_for(state="visible", timeout=TIMEOUT_MS)
            shown = [await p.inner_text() for p in await page.locator("#privacy p").all()]
            assert shown == [texts["privacy_kept"], texts["privacy_never"],
                             texts["privacy_more"]]
            assert await page.locator("#privacy").get_attribute("open") is not None
            await summary.click()  # and closes again
            await kept.wait_for(state="hidden", timeout=TIMEOUT_MS)
        # Still the safety page, same address, no new history entry, nothing stored.
        assert await page.locator("main[data-screen=safety]").count() == 1
        assert page.url == url
        assert await page.evaluate("history.length") == history
        assert await page.evaluate(
            "localStorage.length + sessionStorage.length + document.cookie.length") == 0
    finally:
        await ctx.close()
