"""Continuity and escalation in real Chromium (docs/design/returning.md,
invites.md): a returning youth
reaches the same counsellor with a one-time return code; a liaison joins a
conversation with an invite code pasted into /join, with the counsellor's MAC check
and the youth's consent; a youth who says no lets nobody in; and the youth's
page refuses a consent request the counsellor did not introduce end to end.

Every WebSocket frame of every page is recorded: no message text in any.
axe-core (serious/critical) runs on the new screens in the contexts opened
with bypass_csp (the only way to inject it); the main flows run under the
real CSP.
Screenshots (docs/screenshots/ with CHAT_SCREENSHOTS=1): the return-code
screen, the consent screen and the liaison page.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from chatserver.client.reference import ReferenceClient, staff_login
from chatserver.crypto import passphrase
from chatserver.crypto.tokens import b64e
from tests.browser.conftest import PHONE, REPO, ChatServer, StaffAccount, vectors
from tests.browser.helpers import (
    TIMEOUT_MS,
    Wire,
    console_duty_on,
    console_login,
    console_sees,
    console_send,
    open_youth,
    youth_sees,
    youth_send,
    youth_to_queue,
    youth_wait_chat,
)
from tests.browser.test_accessibility import axe
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("CHAT_SCREENSHOTS") == "1":
        out = REPO / "docs" / "screenshots"
        out.mkdir(parents=True, exist_ok=True)
        return out
    return tmp_path_factory.mktemp("screenshots")


@pytest_asyncio.fixture(loop_scope="module")
async def contexts(browser: Any) -> AsyncIterator[Any]:
    """Fresh browser contexts, closed (pagehide runs) at the end of each test."""
    made: list[Any] = []

    async def new(**kwargs: Any) -> Any:
        ctx = await browser.new_context(**kwargs)
        made.append(ctx)
        return ctx

    yield new
    for ctx in made:
        await ctx.close()


async def page_in(new_context: Any, wire: Wire, errors: list[str], **kwargs: Any) -> Any:
    ctx = await new_context(**kwargs)
    page = await ctx.new_page()
    wire.attach(page)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page


async def counsellor_page(new_context: Any, server: ChatServer, account: StaffAccount,
                          wire: Wire, errors: list[str], **ctx: Any) -> Any:
    page = await page_in(new_context, wire, errors, **ctx)
    await console_login(page, server, account)
    await console_duty_on(page)
    return page


async def claim(page: Any, conv: str) -> None:
    await page.click(f"#claim-{conv}")
    await page.wait_for_selector(f"#tab-{conv}[aria-current=true]", timeout=TIMEOUT_MS)


def now_ms() -> int:
    # A little slack: the server's clock is this machine's, its ms are truncated.
    return int(time.time() * 1000) - 50


async def newest_queue_entry(page: Any, known: set[str], since_ms: int) -> str:
    """The conversation id of a queue entry this console has not seen before
    that arrived after since_ms. (A previous test's youth can be put back in
    the queue for a moment when its counsellor's page goes before it does; it
    keeps its old arrival time.)"""
    async def fresh() -> str | None:
        for item in await page.query_selector_all("#queue-list .queue-item"):
            conv = await item.get_attribute("data-conversation")
            since = await item.eval_on_selector(".waited", "e => Number(e.dataset.since) || 0")
            if conv and conv not in known and since >= since_ms:
                return str(conv)
        return None
    return str(await eventually(fresh, secs=10))


async def open_tool(page: Any, name: str) -> None:
    if await page.get_attribute(f"#tool-{name}", "open") is None:
        await page.click(f"#tool-{name} > summary")


async def make_invite(staff: Any, role: str) -> tuple[str, str]:
    """(address, code) as the console shows them: the code is never in the address."""
    await open_tool(staff, "invite")
    await staff.select_option("#tool-invite select[name=invite-role]", role)
    await staff.click("#invite-create")
    address = await staff.wait_for_selector("#tool-invite input[name=invite-link]",
                                            timeout=TIMEOUT_MS)
    code = await staff.wait_for_selector("#tool-invite input[name=invite-code]",
                                         timeout=TIMEOUT_MS)
    return str(await address.input_value()), str(await code.input_value())


def no_plaintext(wire: Wire, texts: list[str]) -> None:
    for text in texts:
        assert not wire.contains(text), f"plaintext on the wire: {text!r}"


# ---------------------------------------------------------------- return codes


async def test_returning_youth_reaches_the_same_counsellor(
        contexts: Any, chat_server: ChatServer, shots: Path) -> None:
    mira_account = chat_server.add_staff(alias="Mira")
    noor_account = chat_server.add_staff(alias="Noor")
    staff_wire, other_wire, youth_wire = Wire(), Wire(), Wire()
    errors: list[str] = []
    mira = await counsellor_page(contexts, chat_server, mira_account, staff_wire, errors)
    noor = await counsellor_page(contexts, chat_server, noor_account, other_wire, errors)
    seen_by_noor = {str(await i.get_attribute("data-conversation"))
                    for i in await noor.query_selector_all("#queue-list .queue-item")}

    # Given a first conversation between a youth and Mira
    youth = await page_in(contexts, youth_wire, errors, viewport=PHONE)
    known = {str(await i.get_attribute("data-conversation"))
             for i in await mira.query_selector_all("#queue-list .queue-item")}
    t0 = now_ms()
    await youth_to_queue(youth, chat_server)
    first = await newest_queue_entry(mira, known, t0)
    await claim(mira, first)
    await youth_wait_chat(youth)
    hello = f"första-{secrets.token_hex(4)}"
    await youth_send(youth, hello)
    await console_sees(mira, first, hello)

    # When Mira offers a return code at the end
    await open_tool(mira, "return")
    await mira.click("#offer-return")
    issued = await mira.wait_for_selector("#return-issued", timeout=TIMEOUT_MS)
    assert re.search(r"valid until .*\d", await issued.inner_text())

    # Then the youth's page, in Swedish, shows six Swedish words once, each in
    # its own box, marked as Swedish, with the advice, never in the title/URL
    shown = await youth.wait_for_selector("main[data-screen=returncode] #passphrase",
                                          timeout=TIMEOUT_MS)
    words = (await shown.inner_text()).strip()
    assert len(words.split()) == 6, words
    assert set(words.split()) <= set(passphrase.words("sv")), words
    boxes = await shown.query_selector_all(".word")
    assert [(await b.inner_text()).strip() for b in boxes] == words.split()
    assert await shown.get_attribute("lang") == "sv"
    assert await shown.get_attribute("dir") == "ltr"
    advice = await youth.inner_text("main")
    assert "by heart" in advice or "utantill" in advice
    await youth.screenshot(path=str(shots / "youth-phone-return-code.png"), full_page=True)
    assert words not in await youth.title() and words not in youth.url
    # ...and the counsellor's console never had the words, on screen or on the wire
    assert words not in await mira.content()
    assert not staff_wire.contains(words.split()[0] + " " + words.split()[1])
    # Leaving the screen wipes it from the DOM; the chat goes on
    await youth.click("#code-done")
    await youth.wait_for_selector("main[data-screen=chat]", timeout=TIMEOUT_MS)
    assert words not in await youth.content()
    await youth.click("#end")
    await youth.click("#end-yes")
    await youth.wait_for_selector("main[data-screen=ended]", timeout=TIMEOUT_MS)

    # When a fresh browser (nothing shared) enters the code on the start screen
    back = await page_in(contexts, youth_wire, errors, viewport=PHONE, bypass_csp=True)
    await open_youth(back, chat_server)
    await back.click("#go-on")
    field = await back.wait_for_selector("main[data-screen=profile] input[name=passphrase]",
                                         timeout=TIMEOUT_MS)
    for attr, value in (("autocomplete", "off"), ("autocorrect", "off"),
                        ("autocapitalize", "off"), ("spellcheck", "false"), ("type", "text")):
        assert await field.get_attribute(attr) == value, attr
    await back.fill("input[name=passphrase]", "  " + words.upper() + " ")
    await back.click("#skip")
    await back.wait_for_selector("main[data-screen=waiting]", timeout=TIMEOUT_MS)
    assert await back.query_selector("#choose") is None  # Mira is on duty: no choice

    # Then Mira's console shows the entry flagged "returning to you"...
    entry = await mira.wait_for_selector("#queue-list .queue-item:has(.tag.returning)",
                                         timeout=TIMEOUT_MS)
    second = str(await entry.get_attribute("data-conversation"))
    assert "returning to you" in await entry.inner_text()
    # ...and Noor's console never lists it
    await noor.wait_for_timeout(500)  # several coalesced queue pushes later
    listed = {str(await i.get_attribute("data-conversation"))
              for i in await noor.query_selector_all("#queue-list .queue-item")}
    assert second not in listed and first not in listed - seen_by_noor
    assert not other_wire.contains(second)

    # When Mira claims it, they chat again
    await claim(mira, second)
    await youth_wait_chat(back)
    assert "Mira" in (await back.text_content("#with") or "")
    again = f"tillbaka-{secrets.token_hex(4)}"
    reply = f"välkommen-{secrets.token_hex(4)}"
    await youth_send(back, again)
    await console_sees(mira, second, again)
    await console_send(mira, second, reply)
    await youth_sees(back, reply)

    # The code is single use: a third browser gets the plain "did not work" answer
    third = await page_in(contexts, youth_wire, errors, viewport=PHONE)
    await open_youth(third, chat_server)
    await third.click("#go-on")
    await third.fill("input[name=passphrase]", words)
    await third.click("#skip")
    card = await third.wait_for_selector("#code-error", timeout=TIMEOUT_MS)
    text = await card.inner_text()
    # (the youth page speaks Swedish unless the youth switches)
    assert "fungerade inte" in text and "någon annan ha använt den" in text
    assert await third.query_selector("#start-without-code")
    await third.screenshot(path=str(shots / "youth-phone-return-code-refused.png"))
    # Three tries per connection; the fourth is refused as rate limited, plainly too
    for _ in range(3):
        await third.fill("input[name=passphrase]", "fel ord som inte finns")
        await third.click("#skip")  # disables the start buttons until the answer
        await third.wait_for_selector("#skip:not([disabled])", timeout=TIMEOUT_MS)
    await third.wait_for_selector("#code-error:has-text('För många försök')",
                                  timeout=TIMEOUT_MS)
    assert await third.query_selector("#start-without-code")

    # A fresh code after this conversation too; then Mira goes off duty. The next
    # return asks the youth to choose, and says nothing else about Mira.
    await open_tool(mira, "return")
    await mira.click("#offer-return")
    shown = await back.wait_for_selector("#passphrase", timeout=TIMEOUT_MS)
    words2 = (await shown.inner_text()).strip()
    assert words2 != words
    await axe(back, "youth: return code")
    await back.select_option("#bar select.lang", "ar")
    assert await back.inner_text("#passphrase") == words2  # still shown, left to right
    assert await back.get_attribute("#passphrase", "dir") == "ltr"
    await axe(back, "youth: return code (ar)")
    # The quick exit works on this screen too: away at once, the console sees "left (exit)"
    await back.click("#qx")
    await back.wait_for_url("**/neutral", timeout=TIMEOUT_MS)
    await mira.wait_for_selector(f"#tab-{second} .st[data-state=panic_exit]", timeout=TIMEOUT_MS)
    await mira.click("#duty")
    await mira.wait_for_selector("#duty[aria-pressed=false]", timeout=TIMEOUT_MS)
    fourth = await page_in(contexts, youth_wire, errors, viewport=PHONE, bypass_csp=True)
    t4 = now_ms()
    await open_youth(fourth, chat_server)
    await fourth.click("#go-on")
    await fourth.fill("input[name=passphrase]", words2)
    await fourth.click("#start")
    choice = await fourth.wait_for_selector("main[data-screen=waiting] #choose",
                                            timeout=TIMEOUT_MS)
    assert "Mira" not in await fourth.inner_text("main")
    assert await choice.query_selector("#choose-wait")
    await axe(fourth, "youth: wait or anyone")
    await fourth.screenshot(path=str(shots / "youth-phone-return-choose.png"))
    await fourth.click("#choose-anyone")
    await fourth.wait_for_selector("#choose", state="detached", timeout=TIMEOUT_MS)
    # "Anyone now": the general queue, where Noor can take it
    moved = await newest_queue_entry(noor, listed | seen_by_noor | {first, second}, t4)
    assert not await noor.query_selector(
        f"#queue-list .queue-item[data-conversation='{moved}'] .tag.returning")
    await claim(noor, moved)
    await youth_wait_chat(fourth)
    assert "Noor" in (await fourth.text_content("#with") or "")

    no_plaintext(staff_wire, [hello, again, reply])
    no_plaintext(youth_wire, [hello, again, reply])
    assert not staff_wire.contains(words2) and not other_wire.contains(words2)
    assert errors == []


# ---------------------------------------------------------------- invites


async def three_party_setup(contexts: Any, chat_server: ChatServer, wires: dict[str, Wire],
                            errors: list[str], before: str, **ctx: Any) -> tuple[Any, Any, str]:
    """A youth and a counsellor in an active conversation with one message."""
    account = chat_server.add_staff(alias="Lina")
    staff = await counsellor_page(contexts, chat_server, account, wires["staff"], errors, **ctx)
    known = {str(await i.get_attribute("data-conversation"))
             for i in await staff.query_selector_all("#queue-list .queue-item")}
    youth = await page_in(contexts, wires["youth"], errors, viewport=PHONE, **ctx)
    t0 = now_ms()
    await youth_to_queue(youth, chat_server)
    conv = await newest_queue_entry(staff, known, t0)
    await claim(staff, conv)
    await youth_wait_chat(youth)
    await youth_send(youth, before)
    await console_sees(staff, conv, before)
    return staff, youth, conv


async def test_liaison_joins_with_consent_three_way_e2e(
        contexts: Any, chat_server: ChatServer, shots: Path) -> None:
    wires = {"staff": Wire(), "youth": Wire(), "liaison": Wire()}
    errors: list[str] = []
    before = f"före-{secrets.token_hex(4)}"
    staff, youth, conv = await three_party_setup(contexts, chat_server, wires, errors, before)

    # The counsellor makes an invite: a plain address, and a code apart from it
    address, code_text = await make_invite(staff, "police")
    assert address == f"{chat_server.url}/join"
    m = re.fullmatch(rf"([A-Za-z0-9_-]{{43}})\.{conv}", code_text)
    assert m, code_text
    secret = m.group(1)
    assert not wires["staff"].contains(secret)

    # The liaison opens the address and pastes the whole message with the code;
    # the field is emptied at once and the secret is in no URL
    liaison = await page_in(contexts, wires["liaison"], errors, viewport=PHONE)
    await liaison.goto(address)
    await liaison.wait_for_selector("main[data-screen=enter] #invite-code", timeout=TIMEOUT_MS)
    await liaison.fill("#invite-code", "nonsense")  # a wrong paste first: said plainly
    await liaison.click("#join")
    await liaison.wait_for_selector("#notice:has-text('Koden är inte fullständig')",
                                    timeout=TIMEOUT_MS)
    await liaison.screenshot(path=str(shots / "liaison-phone-enter.png"), full_page=True)
    await liaison.fill("#invite-code", f"Öppna {address} och klistra in koden:\n{code_text}")
    await liaison.click("#join")
    await liaison.wait_for_selector("main[data-screen=waiting]", timeout=TIMEOUT_MS)
    assert liaison.url == address
    assert secret not in await liaison.content()
    assert not wires["liaison"].contains(secret)
    await liaison.select_option("#bar select.lang", "en")  # sv and en on this page
    await liaison.wait_for_selector("#waiting:has-text('Keep this page open')")

    # The console verifies the MAC and shows the comparison code; admit
    request = await staff.wait_for_selector(
        "section.join-request[data-verified=true]", timeout=TIMEOUT_MS)
    code = await request.eval_on_selector(".compare", "e => e.dataset.code")
    assert re.fullmatch(r"\d{6}", code)
    await staff.screenshot(path=str(shots / "console-join-request.png"), full_page=True)
    await staff.click("section.join-request .admit")
    await staff.wait_for_selector("section.join-request[data-state=consent]",
                                  timeout=TIMEOUT_MS)

    # The youth sees who wants in, with the role, and consents
    consent = await youth.wait_for_selector("section.consent[data-verified=true]",
                                            timeout=TIMEOUT_MS)
    text = await consent.inner_text()
    assert "Lina vill släppa in en polis" in text  # the youth page in Swedish
    await youth.screenshot(path=str(shots / "youth-phone-consent.png"), full_page=True)
    await youth.click("section.consent .consent-yes")

    # The liaison is seated and sees the same comparison code
    await liaison.wait_for_selector("main[data-screen=chat] #composer", timeout=TIMEOUT_MS)
    await liaison.wait_for_selector("#send:not([disabled])", timeout=TIMEOUT_MS)
    assert await liaison.eval_on_selector(".compare", "e => e.dataset.code") == code
    members = await liaison.inner_text("#members")
    assert "Lina" in members and "Young person" in members
    await staff.wait_for_selector(f'#members .compare[data-code="{code}"]', timeout=TIMEOUT_MS)
    await youth.wait_for_selector("#members li[data-role=liaison]", timeout=TIMEOUT_MS)
    assert "Polis" in await youth.inner_text("#members")

    # All three exchange messages; each decrypts the others'
    y, c, li = (f"{who}-{secrets.token_hex(4)}" for who in ("ungdom", "kurator", "polis"))
    await youth_send(youth, y)
    await console_sees(staff, conv, y)
    await liaison.wait_for_selector(f"#log li.in:has-text('{y}')", timeout=TIMEOUT_MS)
    await console_send(staff, conv, c)
    await youth_sees(youth, c)
    await liaison.wait_for_selector(f"#log li.in:has-text('{c}')", timeout=TIMEOUT_MS)
    await liaison.fill("#composer", li)
    await liaison.click("#send")
    await liaison.wait_for_selector(f"#log li.out:has-text('{li}') [data-state=sent]",
                                    timeout=TIMEOUT_MS)
    await youth_sees(youth, li)
    await console_sees(staff, conv, li)
    await liaison.screenshot(path=str(shots / "liaison-phone-chat.png"), full_page=True)

    # The liaison saw nothing from before it joined
    assert before not in await liaison.content()

    # The youth can remove the liaison at any time; the liaison is told plainly
    member = await youth.get_attribute("#members li[data-role=liaison]", "data-member")
    await youth.click(f"#remove-{member}")
    ended = await liaison.wait_for_selector("main[data-screen=ended] #ended[data-reason=removed]",
                                            timeout=TIMEOUT_MS)
    assert "removed" in await ended.inner_text()
    await staff.wait_for_selector("#log li.sys:has-text('Police left')", timeout=TIMEOUT_MS)

    for wire in wires.values():
        no_plaintext(wire, [before, y, c, li])
    assert errors == []


async def test_youth_declines_liaison_gets_nothing(
        contexts: Any, chat_server: ChatServer) -> None:
    wires = {"staff": Wire(), "youth": Wire(), "liaison": Wire()}
    errors: list[str] = []
    before = f"hemligt-{secrets.token_hex(4)}"
    # (bypass_csp only so that axe-core can be injected)
    staff, youth, conv = await three_party_setup(contexts, chat_server, wires, errors, before,
                                                 bypass_csp=True)
    address, code_text = await make_invite(staff, "social_services")
    # A hand-made link with the code in the fragment still works (the browser
    # has recorded it, see test_liaison_profile.py; the page uses it up at
    # once and takes it out of the address bar)
    liaison = await page_in(contexts, wires["liaison"], errors, bypass_csp=True)
    enter = await liaison.context.new_page()
    await enter.goto(address)
    await enter.wait_for_selector("main[data-screen=enter] #invite-code", timeout=TIMEOUT_MS)
    await axe(enter, "liaison: enter the code")
    await enter.close()
    await liaison.goto(f"{address}#{code_text}")
    await liaison.wait_for_selector("main[data-screen=waiting]", timeout=TIMEOUT_MS)
    assert "#" not in liaison.url and await liaison.evaluate("location.hash") == ""
    await axe(liaison, "liaison: waiting")
    await staff.wait_for_selector("section.join-request[data-verified=true]")
    for name in ("return", "transfer", "refer", "reasons"):
        await open_tool(staff, name)
    await axe(staff, "console: join request, every tool open")
    await staff.click("section.join-request[data-verified=true] .admit")
    consent = await youth.wait_for_selector("section.consent[data-verified=true]",
                                            timeout=TIMEOUT_MS)
    assert "socialtjänsten" in await consent.inner_text()
    await axe(youth, "youth: consent")

    # When the youth says no
    await youth.click("section.consent .consent-no")

    # Then the liaison page says it was not let in, and the counsellor sees the refusal
    await liaison.wait_for_selector("main[data-screen=declined] #declined", timeout=TIMEOUT_MS)
    await axe(liaison, "liaison: not let in")
    await staff.wait_for_selector("section.join-request[data-state=declined]",
                                  timeout=TIMEOUT_MS)
    # The chat goes on between the two, and the liaison receives no box at all
    after = f"efter-{secrets.token_hex(4)}"
    await console_send(staff, conv, after)
    await youth_sees(youth, after)
    assert await youth.query_selector("#members") is None
    assert not any('"box"' in f for f in wires["liaison"].frames)
    for wire in wires.values():
        no_plaintext(wire, [before, after])
    assert errors == []


# ---------------------------------------------------------------- console tools


async def test_professional_lane_reasons_referral_card_and_transfer(
        contexts: Any, chat_server: ChatServer) -> None:
    wire = Wire()
    errors: list[str] = []
    ali = await counsellor_page(contexts, chat_server, chat_server.add_staff(alias="Ali"), wire,
                                errors)
    eva = await counsellor_page(contexts, chat_server, chat_server.add_staff(alias="Eva"), wire,
                                errors)
    known = {str(await i.get_attribute("data-conversation"))
             for i in await ali.query_selector_all("#queue-list .queue-item")}

    # A professional's consultation, with the workplace municipality
    pro = await page_in(contexts, wire, errors, viewport=PHONE)
    t0 = now_ms()
    await open_youth(pro, chat_server)
    await pro.click("#go-on")
    await pro.wait_for_selector("main[data-screen=profile]", timeout=TIMEOUT_MS)
    assert await pro.is_hidden("select[name=workplace_municipality]")
    await pro.check("input[name=professional]")
    assert await pro.is_hidden("select[name=age_band]")
    await pro.select_option("select[name=workplace_municipality]", "Solna")
    await pro.click("#start")
    await pro.wait_for_selector("main[data-screen=waiting]", timeout=TIMEOUT_MS)
    conv = await newest_queue_entry(ali, known, t0)
    assert await ali.query_selector(
        f"#queue-list .queue-item[data-conversation='{conv}'] .tag.professional")
    await claim(ali, conv)
    await youth_wait_chat(pro)

    # Contact reasons from the configured topics
    await open_tool(ali, "reasons")
    await ali.check("#tool-reasons input[value=threat]")
    await ali.check("#tool-reasons input[value=control]")
    await ali.click("#reasons-save")
    await ali.wait_for_selector("#reasons-saved", timeout=TIMEOUT_MS)

    # A referral: search the directory, record it, the card goes end to end
    await open_tool(ali, "refer")
    await ali.fill("#tool-refer input[name=partner-query]", "polisen")
    await ali.click("#partner-search")
    await ali.click("#partner-list li[data-partner=polisen] button")
    await ali.wait_for_selector("#log li[data-kind=card] [data-state=sent]", timeout=TIMEOUT_MS)
    card = await pro.wait_for_selector("#log li[data-kind=card]", timeout=TIMEOUT_MS)
    assert "Polisen" in await card.inner_text()
    assert await card.query_selector("a[href^='tel:']")

    # Transfer: Eva declines (nothing changes), then accepts
    await open_tool(ali, "transfer")
    await ali.click("#transfer-list")
    await ali.click("#colleagues button:has-text('Eva')")
    await ali.wait_for_selector("#transfer-state[data-state=offered]", timeout=TIMEOUT_MS)
    await eva.click(f"#offer-{conv} .offer-decline")
    await ali.wait_for_selector("#transfer-state[data-state=declined]", timeout=TIMEOUT_MS)
    await ali.click("#colleagues button:has-text('Eva')")
    offer = await eva.wait_for_selector(f"#offer-{conv}", timeout=TIMEOUT_MS)
    assert "Ali" in await offer.inner_text()
    await eva.click(f"#offer-{conv} .offer-accept")
    await eva.wait_for_selector(f"#tab-{conv}[aria-current=true]", timeout=TIMEOUT_MS)
    await ali.wait_for_selector(f"#tab-{conv} .st[data-state=transferred]", timeout=TIMEOUT_MS)
    await pro.wait_for_selector("#with:has-text('Eva')", timeout=TIMEOUT_MS)
    text = f"eva-{secrets.token_hex(4)}"
    await console_send(eva, conv, text)
    await youth_sees(pro, text)
    assert not wire.contains(text)
    assert errors == []


# ---------------------------------------------------------------- the youth's check


async def test_youth_refuses_a_request_nobody_introduced(
        contexts: Any, chat_server: ChatServer, clients: list[ReferenceClient]) -> None:
    """A counsellor (here the Python reference client, misbehaving on purpose)
    admits a liaison but introduces a different key: the youth's page must say
    the request could not be verified and offer only "no"."""
    account = chat_server.add_staff(alias="Omar")
    login = await staff_login(chat_server.url, account.username, account.password,
                              await account.code())
    counsellor = ReferenceClient()
    await counsellor.connect(chat_server.url, "/staff", headers={"Cookie": login.cookie})
    clients.append(counsellor)
    await counsellor.duty(True)
    errors: list[str] = []
    youth = await page_in(contexts, Wire(), errors, viewport=PHONE)
    t0 = now_ms()
    await youth_to_queue(youth, chat_server)
    conv = await eventually(lambda: next(
        (e["conversation"] for e in counsellor.queue.get("entries", [])
         if e.get("since", 0) >= t0), None), secs=10)
    await counsellor.claim(conv)
    await youth_wait_chat(youth)

    inv = await counsellor.invite_create(conv, "police")
    liaison = ReferenceClient()
    await liaison.connect(chat_server.url, "/liaison")
    clients.append(liaison)
    joined = await liaison.join(inv.fragment)
    request = str(joined["request"])
    await eventually(lambda: request in counsellor.join_requests.get(conv, {}), secs=10)
    other_key = secrets.token_bytes(32)  # not the key the liaison joined with
    await counsellor.send_message(conv, {"type": "intro", "request": request, "role": "police",
                                         "kx_pk": b64e(other_key),
                                         "sent_at": int(time.time() * 1000)})
    await counsellor.call("admit", {"conversation": conv, "request": request, "accept": True})

    card = await youth.wait_for_selector("section.consent[data-verified=false]",
                                         timeout=TIMEOUT_MS)
    assert "kunde inte kontrolleras" in await card.inner_text()
    assert await card.query_selector(".consent-yes") is None
    await youth.click("section.consent .consent-no")
    await eventually(lambda: conv in liaison.join_declined, secs=10)
    assert errors == []


# ---------------------------------------------------------------- the bundle's invite crypto


async def test_invite_derivations_match_the_python_vectors(
        contexts: Any, chat_server: ChatServer) -> None:
    """The liaison page's bundle reproduces tests/data/e2e_vectors.json
    (invite id, MAC key, MAC, comparison code) and refuses every negative case."""
    v = vectors()
    assert v.get("invites"), "the vectors file has no invite section"
    page = await (await contexts()).new_page()
    await page.goto(chat_server.url + "/join")
    await page.wait_for_selector("main[data-screen=enter]", timeout=TIMEOUT_MS)
    assert await page.evaluate("cv1.ready()") is True
    for case in v["invites"]:
        got = await page.evaluate(
            """(c) => ({
                id: cv1.invite.inviteId(c.secret),
                macKey: cv1.invite.macKey(c.secret),
                mac: cv1.invite.mac(c.mac_key, c.conversation, c.kx_pk),
                ok: cv1.invite.verifyMac(c.mac_key, c.conversation, c.kx_pk, c.mac),
                code: cv1.invite.comparisonCode(c.mac_key, c.invite_id, c.conversation,
                                                c.kx_pk, c.counsellor_pk),
                link: cv1.invite.parseFragment("#" + c.secret + "." + c.conversation),
            })""", case)
        assert got == {"id": case["invite_id"], "macKey": case["mac_key"], "mac": case["mac"],
                       "ok": True, "code": case["comparison_code"],
                       "link": {"secret": case["secret"], "conversation": case["conversation"]}
                       }, case["name"]
    for case in v["invite_negative"]:
        ok = await page.evaluate(
            "(c) => cv1.invite.verifyMac(c.mac_key, c.conversation, c.kx_pk, c.mac)", case)
        assert ok is False, case["name"]
