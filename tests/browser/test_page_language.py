"""The youth page per language, in real Chromium. The server answers with the
variant the browser asks for (Accept-Language); its safety page is in the
HTML, so it is readable and the quick exit works while the script is still
on its way (here: held back for good). When the script arrives it takes the
screen over without a flash (no frame without the safety heading, no jump
in the scroll position), and the language switch still works. Every
language folder of web_client/src/i18n is tried."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import PHONE, ChatServer, NeutralSite
from tests.browser.helpers import TIMEOUT_MS
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

I18N = Path(__file__).resolve().parents[2] / "web_client" / "src" / "i18n"
LANGUAGES = sorted(d.name for d in I18N.iterdir() if d.is_dir())
BUNDLE = re.compile(r"/assets/[0-9a-f]{20}\.js$")


def catalog(code: str) -> tuple[dict[str, Any], dict[str, Any]]:
    meta = json.loads((I18N / code / "meta.json").read_text(encoding="utf-8"))
    youth = json.loads((I18N / code / "youth.json").read_text(encoding="utf-8"))
    return meta, youth


def text(code: str, *keys: str) -> str:
    """A youth text in ``code``, falling back to Swedish like the page does."""
    for lang in (code, "sv"):
        node: Any = catalog(lang)[1]
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str):
            return node
    raise KeyError(keys)


@pytest.mark.parametrize("code", LANGUAGES)
async def test_safety_page_and_quick_exit_before_the_script_in_every_language(
        browser: Any, chat_server: ChatServer, neutral: NeutralSite, code: str) -> None:
    meta, _ = catalog(code)
    ctx = await browser.new_context(viewport=PHONE, locale=code)
    held: list[str] = []

    async def hold(route: Any) -> None:
        held.append(route.request.url)  # never answered: a very slow phone

    await ctx.route(BUNDLE, hold)
    try:
        page = await ctx.new_page()
        response = await page.goto(chat_server.url + "/", wait_until="commit")
        assert response is not None
        vary = {v.strip() for v in (await response.header_value("vary") or "").split(",")}
        assert "Accept-Language" in vary
        assert await response.header_value("cache-control") == "no-store, max-age=0"
        assert await response.header_value("set-cookie") is None
        await page.wait_for_selector("main h1", state="visible")
        await eventually(lambda: held, 5)
        assert await page.get_attribute("main", "data-screen") is None  # no script ran
        assert await page.get_attribute("html", "lang") == code
        assert await page.get_attribute("html", "dir") == meta["dir"]
        assert await page.inner_text("main h1") == text(code, "safety", "heading")
        main = await page.inner_text("main")
        # What leaving does, including that a reload or a closed page ends the chat.
        assert text(code, "safety", "exit_body") in main
        ends_chat = {"sv": "Om du laddar om eller stänger sidan avslutas chatten också.",
                     "en": "Reloading or closing the page also ends the chat."}
        if code in ends_chat:
            assert ends_chat[code] in main
        assert text(code, "safety", "danger_body").replace("{emergency}", "112") in main
        assert await page.inner_text("#qx") == text(code, "exit", "button")
        assert await page.is_disabled("#go-on")  # alive only once the script is

        # Blank and leaving (location.replace) by the end of the press's own
        # dispatch, as test_quick_exit.py checks for the Swedish page: a
        # listener after the early exit's, same node and phase.
        dispatched: list[str] = []
        page.on("console", lambda m: dispatched.append(m.text.split(" ", 1)[1])
                if m.text.startswith("DISPATCHED ") else None)
        await page.evaluate("""() => {
            let nav = null;
            navigation.addEventListener('navigate', (e) => {
                nav = e.navigationType + ' ' + new URL(e.destination.url).pathname;
            });
            addEventListener('click', () => console.log(
                'DISPATCHED ' + nav + ' ' + document.body.hidden));
        }""")
        before = len(neutral.arrivals())
        await page.click("#qx")
        await eventually(lambda: dispatched, 5)
        assert dispatched[0] == "replace /exit true"
        await eventually(lambda: len(neutral.arrivals()) > before, 10)
        await page.wait_for_url(neutral.url)
        await page.go_back()  # replace(): nothing of the youth page to go back to
        await asyncio.sleep(0.3)
        assert not page.url.startswith(chat_server.url), page.url
    finally:
        await ctx.unroute_all(behavior="ignoreErrors")
        await ctx.close()


# Samples, from the first byte, what each animation frame would show.
WATCH_FRAMES = """
window.__frames = [];
(function sample() {
    const main = document.getElementById('main');
    if (main) {
        const h1 = main.querySelector('h1');
        window.__frames.push({
            h1: h1 ? h1.textContent : null,
            screen: main.getAttribute('data-screen'),
            y: Math.round(scrollY),
        });
    }
    requestAnimationFrame(sample);
})();
"""


# Resolves to scrollY once it is at least `least` and unchanged for 20 frames.
SETTLED_SCROLL = """least => new Promise(done => {
    let last = -1, same = 0;
    (function look() {
        if (scrollY >= least && scrollY === last) {
            if (++same >= 20) return done(scrollY);
        } else {
            same = 0;
            last = scrollY;
        }
        requestAnimationFrame(look);
    })();
})"""


async def test_the_script_takes_over_without_a_flash_and_the_switch_works(
        browser: Any, chat_server: ChatServer) -> None:
    ctx = await browser.new_context(viewport=PHONE, locale="en-GB")
    release = asyncio.Event()

    async def delay(route: Any) -> None:
        await release.wait()
        await route.continue_()

    await ctx.route(BUNDLE, delay)
    try:
        page = await ctx.new_page()
        await page.add_init_script(WATCH_FRAMES)
        await page.goto(chat_server.url + "/", wait_until="commit")
        await page.wait_for_selector("main h1", state="visible")
        heading = text("en", "safety", "heading")
        assert await page.inner_text("main h1") == heading
        # The youth opens the folded part (a <details>) and reads on while the
        # script is still away.
        await page.click("main details > summary")
        assert await page.eval_on_selector("main details", "d => d.open")
        # Opening it may scroll, and a wheel turn lands in a later frame: read
        # the position only once it has stayed put for a while, before and
        # after the turn.
        before = await page.evaluate(SETTLED_SCROLL, 0)
        await page.mouse.wheel(0, 300)
        y = await page.evaluate(SETTLED_SCROLL, before + 300)
        release.set()
        await page.wait_for_selector("main[data-screen=safety] #go-on:not([disabled])",
                                     timeout=TIMEOUT_MS)
        await page.evaluate(
            "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        frames = await page.evaluate("window.__frames")
        shown = [f for f in frames if f["h1"] is not None or f["screen"] is not None]
        assert shown and shown[-1]["screen"] == "safety"
        # Every frame from the first one with the page in it shows the safety
        # heading: never "Loading …", never an empty screen.
        assert {f["h1"] for f in shown} == {heading}, {f["h1"] for f in shown}
        # The script rendered over the markup where the youth was reading,
        # and what they opened is still open.
        assert await page.evaluate("scrollY") == y
        assert await page.eval_on_selector("main details", "d => d.open")
        assert await page.input_value("#lang") == "en"

        # The language switch: the whole page, lang and dir follow.
        await page.select_option("#lang", "sv")
        await page.wait_for_function("() => document.documentElement.lang === 'sv'")
        assert await page.inner_text("main h1") == text("sv", "safety", "heading")
        assert await page.inner_text("#qx") == text("sv", "exit", "button")
        rtl = next(c for c in LANGUAGES if catalog(c)[0]["dir"] == "rtl")
        await page.select_option("#lang", rtl)
        await page.wait_for_function(f"() => document.documentElement.lang === '{rtl}'")
        assert await page.get_attribute("html", "dir") == "rtl"
        assert await page.inner_text("main h1") == text(rtl, "safety", "heading")
        # Nothing kept: no cookie, no storage for the choice.
        assert await ctx.cookies() == []
        assert await page.evaluate("localStorage.length + sessionStorage.length") == 0
    finally:
        release.set()
        await ctx.unroute_all(behavior="ignoreErrors")
        await ctx.close()
