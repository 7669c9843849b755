"""Browser-profile canaries: after a real chat and a quick exit, nothing the
youth wrote, read or half-typed — nor the return code shown to them — is
anywhere in the browser's files.

- A fresh *persistent* (normal) profile: every file under it is searched for
  the canaries in UTF-8 and UTF-16 (LE and BE) after the browser has closed.
  A control canary in a visited URL must be found (it is in the history, which
  no site can erase), which proves the search sees flushed files.
- A private (incognito) context: no file appears or changes in the browser's
  profile while it runs a chat.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PHONE,
    ChatServer,
    NeutralSite,
    require_chromium,
)
from tests.browser.helpers import (
    console_claim_first,
    console_duty_on,
    console_login,
    console_sees,
    console_send,
    console_state,
    files_with,
    youth_sees,
    youth_send,
    youth_to_queue,
    youth_wait_chat,
)
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

# Where Chromium keeps anything per site (storage, caches, cookies, history).
SITE_STORAGE = (
    "Local Storage", "Session Storage", "IndexedDB", "Service Worker", "Cache",
    "Code Cache", "File System", "blob_storage", "Cookies", "History", "Visited Links",
    "Top Sites", "Favicons", "Sessions", "Current Session", "Current Tabs",
    "Shared Dictionary", "Storage", "WebStorage", "databases", "Login Data",
)
SETTLE_SECS = 3.0  # give Chromium time for its periodic session/history writes


def canary(label: str) -> str:
    return f"Kanarie{label}{secrets.token_hex(8)}"


def encodings(text: str) -> list[bytes]:
    return [text.encode("utf-8"), text.encode("utf-16-le"), text.encode("utf-16-be")]


def files_containing(root: Path, needles: list[str]) -> dict[str, list[str]]:
    """{needle: [files]} for every needle found under root, in any encoding."""
    forms = {f"{needle}\0{i}": enc for needle in needles
             for i, enc in enumerate(encodings(needle))}
    found: dict[str, list[str]] = {}
    for file, hits in files_with(root, forms).items():
        for needle in dict.fromkeys(hit.split("\0", 1)[0] for hit in hits):
            found.setdefault(needle, []).append(file)
    return found


def tree(root: Path) -> dict[str, str]:
    """path -> sha256 of every file under root."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            try:
                out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                out[str(path.relative_to(root))] = "unreadable"
    return out


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def console(browser: Any, chat_server: ChatServer) -> AsyncIterator[Any]:
    account = chat_server.add_staff(alias="Lina")
    ctx = await browser.new_context()
    page = await ctx.new_page()
    await console_login(page, chat_server, account)
    await console_duty_on(page)
    yield page
    await ctx.close()


async def chat_with_canaries(youth: Any, console: Any, chat_server: ChatServer,
                             neutral: NeutralSite) -> list[str]:
    """A whole chat with canaries sent, received and typed, and a return code
    shown once (its six words are a canary too); then the quick exit."""
    sent, received, typed = canary("Sent"), canary("Recv"), canary("Typed")
    await youth_to_queue(youth, chat_server, {"topic": "threat"})
    conv = await console_claim_first(console)
    await youth_wait_chat(youth)
    await youth_send(youth, f"jag skriver {sent}")
    await console_sees(console, conv, sent)
    await console_send(console, conv, f"vi svarar {received}")
    await youth_sees(youth, received)
    if await console.get_attribute("#tool-return", "open") is None:
        await console.click("#tool-return > summary")
    await console.click("#offer-return")
    shown = await youth.wait_for_selector("main[data-screen=returncode] #passphrase")
    words = (await shown.inner_text()).strip()
    assert len(words.split()) == 6
    await youth.click("#code-done")
    await youth.wait_for_selector("main[data-screen=chat] #composer")
    await youth.fill("#composer", f"inte skickat {typed}")
    await asyncio.sleep(SETTLE_SECS)
    before = len(neutral.arrivals())
    await youth.click("#qx", no_wait_after=True)
    await eventually(lambda: len(neutral.arrivals()) > before, 5)
    await youth.wait_for_url(neutral.url)
    await eventually(lambda: _panic(console, conv), 5)
    return [sent, received, typed, words]


async def _panic(console: Any, conv: str) -> bool:
    return await console_state(console, conv) == "panic_exit"


async def test_persistent_profile_keeps_no_canary(
        playwright_instance: Any, chat_server: ChatServer, neutral: NeutralSite,
        console: Any, tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    control = canary("Control")
    ctx = await playwright_instance.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
        viewport=PHONE)
    try:
        youth = ctx.pages[0] if ctx.pages else await ctx.new_page()
        # A visited URL is the one thing every browser keeps: the control.
        await youth.goto(f"{neutral.url}?{control}")
        canaries = await chat_with_canaries(youth, console, chat_server, neutral)
        await asyncio.sleep(SETTLE_SECS)
    finally:
        await ctx.close()

    found = files_containing(profile, [control, *canaries])
    assert control in found, "the control canary was not found: the search does not work"
    leaked = {k: v for k, v in found.items() if k != control}
    assert not leaked, f"canaries in the browser profile: {leaked}"


async def test_private_context_leaves_no_file(
        chat_server: ChatServer, neutral: NeutralSite, console: Any) -> None:
    require_chromium()
    from playwright.async_api import async_playwright

    # Playwright puts the browser's own (throwaway) profile under TMPDIR: point
    # it at a directory we can watch (short: Chromium's socket path is limited).
    tmp = Path(tempfile.mkdtemp(prefix="pv", dir="/tmp"))
    saved = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp)
    try:
        pw = await async_playwright().start()
    finally:
        if saved is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved
    try:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # The browser creates its own default profile lazily, on the first
            # context of any kind: warm it up with a private visit elsewhere so
            # only what the chat itself causes is compared.
            warm = await browser.new_context()
            await (await warm.new_page()).goto(neutral.url)
            await warm.close()
            await asyncio.sleep(SETTLE_SECS)  # let start-up writes finish
            before = tree(tmp)
            private = await browser.new_context(viewport=PHONE)  # incognito
            youth = await private.new_page()
            canaries = await chat_with_canaries(youth, console, chat_server, neutral)
            await private.close()
            await asyncio.sleep(SETTLE_SECS)
            after = tree(tmp)
            found = files_containing(tmp, canaries)
        finally:
            await browser.close()
    finally:
        await pw.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    assert before, "the browser's profile directory was not found under TMPDIR"
    assert not found, f"canaries on disk: {found}"
    # Chromium's own housekeeping (preferences, LevelDB LOCK/LOG files of
    # per-browser services, network state timers) keeps writing whatever the
    # context does. What must not exist is any file that belongs to, or names,
    # the site the youth visited.
    new_or_changed = sorted(k for k, v in after.items() if before.get(k) != v)
    per_site = [k for k in new_or_changed if set(Path(k).parts) & set(SITE_STORAGE)]
    assert not per_site, f"the private context wrote site storage: {per_site}"
    host = chat_server.url.split("//", 1)[1]
    naming = files_containing(tmp, [host])
    assert not naming, f"files naming the site: {naming}; changed: {new_or_changed}"
