"""Return passphrases over real sockets (docs/design/returning.md):
issue → redeem → the same counsellor's personal lane; off duty → the choice;
the personal wait times out to the choice again; one winner of two concurrent
redemptions; unknown, used and expired get the same answer after the same
work; the three limits trip; nothing is spent while nobody is on duty.

Real server, real SQLite, real Argon2id (the cheap test profile except where
used and unknown codes are compared, which runs the production profile
``return_v1``). Nothing here asserts how long something took, only what was
done: a loaded machine makes everything slower, not different.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable
from typing import Any

import pytest

from chatserver.client.reference import CallFailed, ReferenceClient
from chatserver.crypto import passphrase
from chatserver.domain import returning
from tests.conftest import (
    LiveServer,
    MakeServer,
    StaffCreds,
)
from tests.helpers.emits import spy_emits

# A public key libsodium can use (all-zero "A" * 43 is a low-order point: bad_payload).
USABLE_PK = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA"

WRONG = "these five words are wrong"


async def _staff_id(server: LiveServer, creds: StaffCreds) -> int:
    record = await server.ctx.store.get_by_username(creds.username)
    assert record is not None
    return record.id


async def _issue(server: LiveServer, counsellor: ReferenceClient) -> str:
    """A whole first conversation with ``counsellor``, ending with a return
    passphrase shown to the youth's page. Returns the passphrase."""
    youth = await server.youth()
    conv = (await youth.start())["conversation"]
    await counsellor.claim(conv)
    await youth.wait_for(lambda: youth.conversations[conv].epoch == 1, 5)
    reply = await counsellor.offer_return(conv)
    assert set(reply) == {"ok", "expires_at"}  # the counsellor never sees the words
    await youth.wait_for(lambda: conv in youth.return_codes, 5)
    code = youth.return_codes[conv]
    assert code["expires_at"] == reply["expires_at"]
    await counsellor.end(conv)
    return str(code["passphrase"])


def _return_rows(server: LiveServer) -> int:
    db = sqlite3.connect(f"file:{server.settings.database_path}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM return_codes").fetchone()[0])
    finally:
        db.close()


async def _fails(call: Awaitable[Any]) -> CallFailed:
    try:
        await call
    except CallFailed as exc:
        return exc
    raise AssertionError("the call succeeded")


def _entries(client: ReferenceClient) -> list[dict[str, Any]]:
    return list(client.queue.get("entries", []))


# ------------------------------------------------------------------ routing


async def test_returning_youth_waits_in_their_own_counsellors_lane(
        live_server: LiveServer) -> None:
    # Given counsellor A who gave a youth a passphrase, and colleague B
    emitted = spy_emits(live_server)
    creds_a, creds_b = await live_server.add_staff(), await live_server.add_staff()
    a = await live_server.staff_client(creds_a)
    b = await live_server.staff_client(creds_b)
    words = await _issue(live_server, a)
    assert len(words.split()) == 6

    # When a youth who is not returning, then the returning youth, start
    other = await live_server.youth()
    general = (await other.start())["conversation"]
    back = await live_server.youth()
    reply = await back.start({"language": "sv"}, passphrase=words)
    conv = reply["conversation"]

    # Then the reply says "queued" and nothing about the counsellor
    assert reply["returning"] == "queued"
    assert set(reply) == {"ok", "conversation", "member", "resume", "position", "eta_secs",
                          "returning"}
    # A sees the returning youth first, flagged; B sees only the general lane
    await a.wait_for(lambda: [e["conversation"] for e in _entries(a)] == [conv, general], 5)
    mine = _entries(a)[0]
    assert (mine["returning"], mine["lane"]) == (True, "personal")
    assert (_entries(a)[1]["returning"], _entries(a)[1]["lane"]) == (False, "general")
    await b.wait_for(lambda: any(e["conversation"] == general for e in _entries(b)), 5)
    assert conv not in [e["conversation"] for e in _entries(b)]
    assert b.queue["total"] == 1
    seen_by_b = live_server.ctx.chat.staff_queue_snapshot(await _staff_id(live_server, creds_b))
    assert [e["conversation"] for e in seen_by_b["entries"]] == [general]
    with pytest.raises(CallFailed) as refused:
        await b.claim(conv)
    assert refused.value.code == "not_allowed"

    # And A's take_next picks the returning youth before the older general one
    taken = await a.take_next()
    assert taken["conversation"] == conv
    await back.wait_for(lambda: back.conversations[conv].epoch == 1, 5)
    await back.send_text(conv, "det är jag igen")
    assert (await a.next_message(5)).text == "det är jag igen"
    claims = [e async for e in live_server.ctx.store.iter_audit() if e.action == "claim"]
    assert claims[-1].conversation is not None and "returning" not in claims[-1].detail

    # And a fresh passphrase can be issued at the end of this conversation too
    await a.offer_return(conv)
    await back.wait_for(lambda: conv in back.return_codes, 5)
    assert back.return_codes[conv]["passphrase"] != words
    # return_code only ever went to a youth page; no staff event carried the words
    codes = [e for e in emitted if e.event == "return_code"]
    assert len(codes) == 2 and {e.namespace for e in codes} == {"/youth"}
    for e in emitted:
        if e.namespace == "/staff":
            assert words not in repr(e.data)


async def test_a_swedish_page_gets_swedish_words_redeemed_from_any_page(
        live_server: LiveServer) -> None:
    # Given a youth whose page is in Swedish, and one whose page is in Arabic
    creds = await live_server.add_staff()
    a = await live_server.staff_client(creds)
    issued: dict[str, dict[str, Any]] = {}
    for page in ("sv", "ar"):
        youth = await live_server.youth()
        conv = (await youth.start(page_language=page))["conversation"]
        await a.claim(conv)
        await youth.wait_for(lambda y=youth, c=conv: y.conversations[c].epoch == 1, 5)
        # When the counsellor offers a return code
        reply = await a.offer_return(conv)
        assert set(reply) == {"ok", "expires_at"}  # the console learns no words, no language
        await youth.wait_for(lambda y=youth, c=conv: c in y.return_codes, 5)
        issued[page] = youth.return_codes[conv]
        await a.end(conv)

    # Then the Swedish page's six words are Swedish ones; the Arabic page, with
    # no list of its own, gets the plain-letter English list, and says so
    swedish, english = set(passphrase.words("sv")), set(passphrase.words("en"))
    sv_words = str(issued["sv"]["passphrase"]).split(" ")
    assert issued["sv"]["language"] == "sv"
    assert len(sv_words) == 6 and set(sv_words) <= swedish
    assert issued["ar"]["language"] == "en"
    assert set(str(issued["ar"]["passphrase"]).split(" ")) <= english

    # When each code is typed on a page in another language, in capitals with
    # hyphens and a comma (how a youth might copy it from memory)
    for page, code in (("en", issued["sv"]), ("sv", issued["ar"])):
        typed = "-".join(str(code["passphrase"]).upper().split(" ")).replace("-", ", ", 1)
        back = await live_server.youth()
        reply = await back.start(page_language=page, passphrase=typed)
        # Then it redeems: the words are the key, whatever the page's language
        assert reply["returning"] == "queued"
        assert (await a.take_next())["conversation"] == reply["conversation"]
    assert _return_rows(live_server) == 0  # both used up


async def test_the_audit_log_records_a_return_but_links_nothing(
        live_server: LiveServer) -> None:
    # Given counsellor A who gave a youth a passphrase, and the youth's return
    creds = await live_server.add_staff()
    a = await live_server.staff_client(creds)
    words = await _issue(live_server, a)
    back = await live_server.youth()
    conv = (await back.start({"language": "sv"}, passphrase=words))["conversation"]
    assert (await a.take_next())["conversation"] == conv
    await back.wait_for(lambda: back.conversations[conv].epoch == 1, 5)

    # When the database is read (what a leak gives)
    entries = [e async for e in live_server.ctx.store.iter_audit()]
    issued = [e for e in entries if e.action == "return_issued"]
    redeemed = [e for e in entries if e.action == "return_redeemed"]
    starts = [e.conversation for e in entries if e.action == "conversation_start"]

    # Then it holds that a code was issued, by whom, and that one was redeemed
    assert [e.actor for e in issued] == [creds.username]
    assert [e.actor for e in redeemed] == ["youth"]
    # ... and nothing to join the two on: no row id, no conversation, no detail
    for e in issued + redeemed:
        assert (e.conversation, e.detail) == (None, "{}")
    # ... and the second conversation's entries do not say it was a return to A
    first, second = starts
    assert first != second
    for e in entries:
        if e.conversation == second:
            assert "returning" not in e.detail and first not in e.detail


async def test_counsellor_off_duty_gives_the_choice_then_anyone(
        live_server: LiveServer) -> None:
    a = await live_server.staff_client()
    words = await _issue(live_server, a)
    await a.duty(False)
    b = await live_server.staff_client()

    youth = await live_server.youth()
    reply = await youth.start(passphrase=words)
    conv = reply["conversation"]

    # The same reply shape as "queued": the youth learns nothing about A's schedule
    assert reply["returning"] == "choose"
    assert set(reply) == {"ok", "conversation", "member", "resume", "position", "eta_secs",
                          "returning"}
    with pytest.raises(CallFailed) as refused:
        await b.claim(conv)  # still waiting for A, in A's lane
    assert refused.value.code == "not_allowed"

    chosen = await youth.choose(conv, wait=False)  # anyone now
    assert set(chosen) == {"ok", "position", "eta_secs"} and chosen["position"] == 1
    await b.wait_for(lambda: [(e["conversation"], e["lane"], e["returning"])
                              for e in _entries(b)] == [(conv, "general", False)], 5)
    assert (await b.take_next())["conversation"] == conv
    with pytest.raises(CallFailed) as late:
        await youth.choose(conv, wait=True)  # claimed: there is nothing to choose
    assert late.value.code == "wrong_state"


async def test_personal_wait_times_out_to_the_choice_again(make_server: MakeServer) -> None:
    server = await make_server(personal_wait_secs=1)
    a = await server.staff_client()
    words = await _issue(server, a)
    youth = await server.youth()
    reply = await youth.start(passphrase=words)
    conv = reply["conversation"]
    assert reply["returning"] == "queued"

    # Unclaimed for personal_wait_secs: the server asks again
    await youth.wait_for(lambda: youth.choices.get(conv) == 1, 5)
    await youth.choose(conv, wait=True)  # wait for them once more ...
    await youth.wait_for(lambda: youth.choices.get(conv) == 2, 5)  # ... and again asked
    await youth.choose(conv, wait=False)  # then anyone
    await a.wait_for(lambda: [(e["conversation"], e["lane"]) for e in _entries(a)]
                     == [(conv, "general")], 5)
    await asyncio.sleep(1.2)  # no more questions once in the general lane
    assert youth.choices[conv] == 2

    # A youth who did not come back with a passphrase has no choice to make
    plain = await server.youth()
    other = (await plain.start())["conversation"]
    assert (await _fails(plain.choose(other, wait=False))).code == "wrong_state"


# ----------------------------------------------------------- single use


async def test_two_concurrent_redemptions_have_exactly_one_winner(
        live_server: LiveServer) -> None:
    a = await live_server.staff_client()
    words = await _issue(live_server, a)
    assert _return_rows(live_server) == 1
    first, second = await live_server.youth(), await live_server.youth()

    results = await asyncio.gather(first.start(passphrase=words),
                                   second.start(passphrase=words), return_exceptions=True)

    won = [r for r in results if isinstance(r, dict)]
    lost = [r for r in results if isinstance(r, CallFailed)]
    assert len(won) == 1 and len(lost) == 1, results
    assert won[0]["returning"] == "queued" and lost[0].code == "bad_passphrase"
    assert _return_rows(live_server) == 0
    assert len(live_server.ctx.chat.conversations) == 1  # the loser queued nothing


async def test_unknown_used_and_expired_get_one_identical_answer(
        live_server: LiveServer, make_server: MakeServer) -> None:
    # used: redeemed once, then again (default server)
    a = await live_server.staff_client()
    words = await _issue(live_server, a)
    assert (await (await live_server.youth()).start(passphrase=words))["returning"] == "queued"
    probe = await live_server.youth()
    used = await probe.call("start", {"kx_pk": USABLE_PK, "passphrase": words}, check=False)
    unknown = await probe.call("start", {"kx_pk": USABLE_PK, "passphrase": WRONG}, check=False)
    # the same words in another spelling are the same passphrase (normalised), still used
    respelled = await probe.call("start", {"kx_pk": USABLE_PK,
                                           "passphrase": "  " + words.upper().replace(" ", "-")},
                                 check=False)

    # expired: a server whose codes live one second
    short = await make_server(return_ttl_secs=1)
    b = await short.staff_client()
    old = await _issue(short, b)
    await asyncio.sleep(1.2)
    late = await (await short.youth()).call("start", {"kx_pk": USABLE_PK, "passphrase": old},
                                             check=False)

    assert used == unknown == respelled == late == {"ok": False, "error": "bad_passphrase"}
    assert _return_rows(short) == 0  # the expired row went with the attempt


async def test_every_miss_pays_the_kdf_before_the_query(live_server: LiveServer) -> None:
    """The structural half of "the same time": for unknown, used and expired
    codes alike, Argon2id runs first and then exactly one DELETE … RETURNING;
    nothing short-cuts a miss. (The measured half is the next test.)"""
    calls: list[str] = []
    ctx = live_server.ctx
    real_derive, real_redeem = ctx.kdf.derive, ctx.store.redeem_return_code

    async def derive(text: str) -> Any:
        calls.append("kdf")
        return await real_derive(text)

    async def redeem(lookup: bytes) -> Any:
        calls.append("query")
        return await real_redeem(lookup)

    ctx.kdf.derive = derive  # type: ignore[method-assign]
    ctx.store.redeem_return_code = redeem  # type: ignore[method-assign]
    a = await live_server.staff_client()
    words = await _issue(live_server, a)
    calls.clear()  # issuing derives too

    await (await live_server.youth()).start(passphrase=words)  # hit
    youth = await live_server.youth()
    for attempt in (words, WRONG):  # used, unknown
        assert (await _fails(youth.start(passphrase=attempt))).code == "bad_passphrase"
    assert calls == ["kdf", "query"] * 3


async def test_hit_used_unknown_and_expired_pay_the_same_derivation(
        make_server: MakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the production Argon2id profile (t=3, 64 MiB, p=1), a valid, a used,
    an unknown and an expired passphrase each cost exactly one derivation with
    those parameters, then the one query, and nothing else: the answer's timing
    cannot tell them apart. Counted at the Argon2id call itself instead of
    timed, so a loaded machine cannot fail it, and a cache or a short-cut
    anywhere above that call (a miss that skips the derivation, a remembered
    lookup key for a code seen before) shows as a missing call."""
    server = await make_server(passphrase_profile="return_v1", rate_returns_per_hour=1000)
    creds = await server.add_staff()
    await server.staff_client(creds)
    staff_id = await _staff_id(server, creds)
    ctx = server.ctx

    async def issue(ttl_secs: int) -> str:
        return (await returning.issue(staff_id, kdf=ctx.kdf, store=ctx.store, clock=ctx.clock,
                                      ttl_secs=ttl_secs)).passphrase

    valid, used, expired = await issue(3600), await issue(3600), await issue(0)
    assert (await (await server.youth()).start(passphrase=used))["returning"] == "queued"

    work: list[object] = []
    real_argon2, real_redeem = passphrase.hash_secret_raw, ctx.store.redeem_return_code

    def argon2(*args: Any, **kwargs: Any) -> bytes:  # runs in the KDF's worker thread
        work.append((kwargs["time_cost"], kwargs["memory_cost"], kwargs["parallelism"]))
        return real_argon2(*args, **kwargs)

    async def redeem(lookup: bytes) -> Any:
        work.append("query")
        return await real_redeem(lookup)

    monkeypatch.setattr(passphrase, "hash_secret_raw", argon2)
    ctx.store.redeem_return_code = redeem  # type: ignore[method-assign]
    production = (3, 64 * 1024, 1)  # t, memory in KiB, p

    work.clear()
    assert (await (await server.youth()).start(passphrase=valid))["returning"] == "queued"
    assert work == [production, "query"]
    for kind, text in (("used", used), ("unknown", WRONG), ("expired", expired)):
        work.clear()
        youth = await server.youth()
        assert (await _fails(youth.start(passphrase=text))).code == "bad_passphrase"
        assert (kind, work) == (kind, [production, "query"])


# --------------------------------------------------------------- limits


async def test_three_tries_per_connection(live_server: LiveServer) -> None:
    a = await live_server.staff_client()
    words = await _issue(live_server, a)
    youth = await live_server.youth()
    for _ in range(3):
        assert (await _fails(youth.start(passphrase=WRONG))).code == "bad_passphrase"
    fourth = await _fails(youth.start(passphrase=words))  # even the right one
    assert fourth.code == "rate_limited" and fourth.info["retry_after_secs"] > 0
    assert _return_rows(live_server) == 1  # refused before hashing: not spent
    fresh = await live_server.youth()
    assert (await fresh.start(passphrase=words))["returning"] == "queued"


async def test_per_address_budget(make_server: MakeServer) -> None:
    server = await make_server(rate_returns_per_hour=4)
    await server.staff_client()
    first, second = await server.youth(), await server.youth()
    for _ in range(3):
        assert (await _fails(first.start(passphrase=WRONG))).code == "bad_passphrase"
    assert (await _fails(second.start(passphrase=WRONG))).code == "bad_passphrase"
    over = await _fails(second.start(passphrase=WRONG))  # the fifth from this address
    assert over.code == "rate_limited" and over.info["retry_after_secs"] > 0
    # A plain start from the same address is a different budget
    plain = await server.youth()
    assert (await plain.start())["position"] >= 1


async def test_global_failure_budget_slows_then_refuses(make_server: MakeServer) -> None:
    server = await make_server(return_failures_per_min=4, rate_returns_per_hour=1000)
    a = await server.staff_client()
    words = await _issue(server, a)
    budget = server.ctx.return_failures
    told: list[float] = []  # the delay each attempt was given, before it waited
    real_delay = budget.delay

    def delay() -> float:
        told.append(real_delay())
        return told[-1]

    budget.delay = delay  # type: ignore[method-assign]
    took: list[float] = []
    for _ in range(4):  # each from its own connection and so within every other limit
        youth = await server.youth()
        t0 = time.perf_counter()
        assert (await _fails(youth.start(passphrase=WRONG))).code == "bad_passphrase"
        took.append(time.perf_counter() - t0)
    # Up to half the budget nobody waits; past it every attempt does (3 failures of 4: 1.5 s)
    assert told == [0.0, 0.0, 0.0, 1.5]
    # and the answer really was held back that long (a lower bound: load only adds to it)
    assert took[3] > 1.4, took
    over = await _fails((await server.youth()).start(passphrase=WRONG))
    assert over.code == "rate_limited" and over.info["retry_after_secs"] > 0
    # At the budget even a valid code is refused, and not spent
    valid = await _fails((await server.youth()).start(passphrase=words))
    assert valid.code == "rate_limited"
    assert _return_rows(server) == 1


async def test_nobody_on_duty_never_spends_the_passphrase(live_server: LiveServer) -> None:
    a = await live_server.staff_client()
    words = await _issue(live_server, a)
    await a.duty(False)
    youth = await live_server.youth()
    for _ in range(4):  # more than the three tries: none of these counts as one
        closed = await _fails(youth.start(passphrase=words))
        assert closed.code == "nobody_on_duty" and closed.info["hours"]
    assert _return_rows(live_server) == 1
    assert not live_server.ctx.chat.conversations

    await a.duty(True)
    assert (await youth.start(passphrase=words))["returning"] == "queued"
    assert _return_rows(live_server) == 0
