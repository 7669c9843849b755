"""Return passphrases over real sockets (issue 4, "Tests"; docs/design/returning.md):
issue → redeem → the same counsellor's personal lane; off duty → the choice;
the personal wait times out to the choice again; one winner of two concurrent
redemptions; unknown, used and expired get the same answer after the same
work; the three limits trip; nothing is spent while nobody is on duty.

Real server, real SQLite, real Argon2id (the cheap test profile except in the
timing test, which runs the production profile ``return_v1``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
from collections.abc import Awaitable
from typing import Any

import pytest

from chatserver.client.reference import CallFailed, ReferenceClient
from chatserver.domain import returning
from tests.conftest import (
    LiveServer,
    MakeServer,
    StaffCreds,
    spy_sent,
)

Emitted = list[tuple[str, Any, str]]
WRONG = "these five words are wrong"


def _spy_emits(server: LiveServer) -> Emitted:
    """Every event the server puts on the wire (tests/conftest.py: spy_sent)."""
    return spy_sent(server, lambda s: s[:3])


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
    emitted = _spy_emits(live_server)
    creds_a, creds_b = await live_server.add_staff(), await live_server.add_staff()
    a = await live_server.staff_client(creds_a)
    b = await live_server.staff_client(creds_b)
    words = await _issue(live_server, a)
    assert len(words.split()) == 5

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
    assert '"outcome":"returning"' in claims[-1].detail

    # And a fresh passphrase can be issued at the end of this conversation too
    await a.offer_return(conv)
    await back.wait_for(lambda: conv in back.return_codes, 5)
    assert back.return_codes[conv]["passphrase"] != words
    # return_code only ever went to a youth page; no staff event carried the words
    codes = [(data, ns) for event, data, ns in emitted if event == "return_code"]
    assert len(codes) == 2 and {ns for _, ns in codes} == {"/youth"}
    for _event, data, ns in emitted:
        if ns == "/staff":
            assert words not in repr(data)


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
    used = await probe.call("start", {"kx_pk": "A" * 43, "passphrase": words}, check=False)
    unknown = await probe.call("start", {"kx_pk": "A" * 43, "passphrase": WRONG}, check=False)
    # the same words in another spelling are the same passphrase (normalised), still used
    respelled = await probe.call("start", {"kx_pk": "A" * 43,
                                           "passphrase": "  " + words.upper().replace(" ", "-")},
                                 check=False)

    # expired: a server whose codes live one second
    short = await make_server(return_ttl_secs=1)
    b = await short.staff_client()
    old = await _issue(short, b)
    await asyncio.sleep(1.2)
    late = await (await short.youth()).call("start", {"kx_pk": "A" * 43, "passphrase": old},
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


async def test_unknown_and_used_take_the_same_time(make_server: MakeServer) -> None:
    """Measured with the production Argon2id profile (t=3, 64 MiB): the median
    of N unknown and N used redemptions over real sockets. Both are dominated by
    the derivation (~0.2–0.4 s here), which runs before the query, so they must
    agree within a generous bound; a short-cut on a miss would show as a ratio
    far below 1. N is small (each try costs one Argon2id) and the two kinds are
    interleaved so that drift in machine load hits both alike."""
    n = 4
    server = await make_server(passphrase_profile="return_v1", rate_returns_per_hour=1000)
    creds = await server.add_staff()
    await server.staff_client(creds)
    staff_id = await _staff_id(server, creds)
    ctx = server.ctx
    issued = await asyncio.gather(*(
        returning.issue(staff_id, kdf=ctx.kdf, store=ctx.store, clock=ctx.clock,
                        ttl_secs=3600) for _ in range(n)))
    for code in issued:  # spend each once
        await (await server.youth()).start(passphrase=code.passphrase)

    async def timed(text: str) -> float:
        youth = await server.youth()
        t0 = time.perf_counter()
        assert (await _fails(youth.start(passphrase=text))).code == "bad_passphrase"
        return time.perf_counter() - t0

    used: list[float] = []
    unknown: list[float] = []
    for code in issued:
        used.append(await timed(code.passphrase))
        unknown.append(await timed(WRONG))

    med_used, med_unknown = statistics.median(used), statistics.median(unknown)
    # Both paid the derivation (the cheap test profile would take ~1 ms) ...
    assert min(used + unknown) > 0.05, (used, unknown)
    # ... and they agree: a generous band, not an exact figure.
    ratio = med_unknown / med_used
    assert 0.6 < ratio < 1.67, (used, unknown)


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
    took: list[float] = []
    for _ in range(4):  # each from its own connection and so within every other limit
        youth = await server.youth()
        t0 = time.perf_counter()
        assert (await _fails(youth.start(passphrase=WRONG))).code == "bad_passphrase"
        took.append(time.perf_counter() - t0)
    # Past half the budget every attempt waits (3 failures of 4: 1.5 s)
    assert took[0] < 0.5 and took[3] > 1.2, took
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
