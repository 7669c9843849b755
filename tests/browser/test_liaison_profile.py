"""The invite secret never reaches the liaison's browser profile.

A liaison in a fresh *persistent* (normal) Chromium profile follows an invite
exactly as the counsellor's console hands it out, is let in, chats, and
closes the browser. Then every file under the profile is searched for the
secret in every form we can think of: the code as shown, the base64url
secret alone, standard base64, percent-encoded, UTF-16 (LE and BE), hex and
the 32 raw bytes. A control code of the same shape in the fragment of a
visited URL must be found in History, which proves that the search sees
flushed files and that a secret in a URL the browser commits would be found.
(With the old link `/join#<code>` the secret was in History, Sessions, Tabs,
Favicons and segmentation_platform/ukm_db.)

Why the code is pasted and never in a link: docs/design/invites.md ("The
invite code never travels in a URL").
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE, ChatServer, NeutralSite
from tests.browser.helpers import (
    TIMEOUT_MS,
    console_claim_first,
    console_duty_on,
    console_login,
    files_with,
    youth_to_queue,
    youth_wait_chat,
)
from tests.browser.test_profile_canary import SETTLE_SECS

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

CODE = re.compile(r"([A-Za-z0-9_-]{43})\.([0-9a-f]{32})")


@dataclass
class Invite:
    address: str  # what the liaison opens
    code: str  # what the liaison pastes into the page


def secret_forms(code: str) -> dict[str, bytes]:
    """Every encoding of an invite code's secret worth looking for on disk."""
    m = CODE.fullmatch(code)
    assert m, code
    b64url = m.group(1)
    raw = base64.urlsafe_b64decode(b64url + "=")
    forms: dict[str, bytes] = {}
    for name, text in (("code", code), ("base64url", b64url),
                       ("base64", base64.b64encode(raw).decode("ascii")),
                       ("percent", "".join(f"%{b:02X}" for b in b64url.encode("ascii"))),
                       ("percent-lower", "".join(f"%{b:02x}" for b in b64url.encode("ascii"))),
                       ("hex", raw.hex())):
        forms[f"{name} utf-8"] = text.encode("utf-8")
        forms[f"{name} utf-16le"] = text.encode("utf-16-le")
        forms[f"{name} utf-16be"] = text.encode("utf-16-be")
    forms["raw bytes"] = raw
    return forms


@pytest_asyncio.fixture(loop_scope="module")
async def counsellor_and_youth(browser: Any, chat_server: ChatServer
                               ) -> AsyncIterator[tuple[Any, Any, str]]:
    """A counsellor and a youth in an active conversation (ordinary contexts)."""
    account = chat_server.add_staff(alias="Lina")
    staff_ctx = await browser.new_context()
    youth_ctx = await browser.new_context(viewport=PHONE)
    try:
        staff = await staff_ctx.new_page()
        await console_login(staff, chat_server, account)
        await console_duty_on(staff)
        youth = await youth_ctx.new_page()
        await youth_to_queue(youth, chat_server)
        conv = await console_claim_first(staff)
        await youth_wait_chat(youth)
        yield staff, youth, conv
    finally:
        await youth_ctx.close()
        await staff_ctx.close()


async def invite_as_sent(staff: Any, role: str) -> Invite:
    """What the counsellor copies to the liaison: an address and a code."""
    if await staff.get_attribute("#tool-invite", "open") is None:
        await staff.click("#tool-invite > summary")
    await staff.select_option("#tool-invite select[name=invite-role]", role)
    await staff.click("#invite-create")
    address = await staff.wait_for_selector("#tool-invite input[name=invite-link]",
                                            timeout=TIMEOUT_MS)
    code = await staff.wait_for_selector("#tool-invite input[name=invite-code]",
                                         timeout=TIMEOUT_MS)
    return Invite(str(await address.input_value()), str(await code.input_value()))


async def liaison_follows(page: Any, invite: Invite) -> None:
    """Open the address; paste the code when the page asks for it."""
    await page.goto(invite.address)
    screen = await page.wait_for_selector(
        "main[data-screen=enter], main[data-screen=waiting]", timeout=TIMEOUT_MS)
    if await screen.get_attribute("data-screen") == "enter":
        await page.fill("#invite-code", invite.code)
        await page.click("#join")
    await page.wait_for_selector("main[data-screen=waiting]", timeout=TIMEOUT_MS)


async def test_invite_secret_never_reaches_the_liaison_profile(
        playwright_instance: Any, chat_server: ChatServer, neutral: NeutralSite,
        counsellor_and_youth: tuple[Any, Any, str], tmp_path: Path) -> None:
    staff, youth, conv = counsellor_and_youth
    invite = await invite_as_sent(staff, "police")
    assert CODE.fullmatch(invite.code), invite.code
    assert invite.code.endswith(f".{conv}")
    # A control of the same shape, in the fragment of a URL the browser commits.
    control = f"{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip('=')}.{conv}"

    profile = tmp_path / "profile"
    ctx = await playwright_instance.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
        viewport=PHONE)
    try:
        liaison = ctx.pages[0] if ctx.pages else await ctx.new_page()
        await liaison.goto(f"{neutral.url}#{control}")
        # Given the liaison follows the invite and is let in
        await liaison_follows(liaison, invite)
        await staff.wait_for_selector("section.join-request[data-verified=true]",
                                      timeout=TIMEOUT_MS)
        await staff.click("section.join-request .admit")
        await youth.wait_for_selector("section.consent[data-verified=true]", timeout=TIMEOUT_MS)
        await youth.click("section.consent .consent-yes")
        await liaison.wait_for_selector("main[data-screen=chat] #send:not([disabled])",
                                        timeout=TIMEOUT_MS)
        assert "#" not in liaison.url
        # (Chromium writes History and Sessions in the background: let it.)
        await asyncio.sleep(SETTLE_SECS)
    finally:
        # When the browser is closed cleanly (pagehide runs, files are flushed)
        await ctx.close()
    await staff.wait_for_selector("#log li.sys:has-text('Police left')", timeout=TIMEOUT_MS)

    # Then the control is on disk, and no form of the secret is anywhere
    seen = files_with(profile, secret_forms(control))
    assert any(f.endswith("History") for f in seen), f"control not found: {seen}"
    leaked = files_with(profile, secret_forms(invite.code))
    assert not leaked, f"the invite secret is in the liaison's browser profile: {leaked}"
