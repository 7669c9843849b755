"""The youth's page language and the counsellor's languages over real sockets:
`start.page_language` is checked against the shipped youth catalogs and
reaches the counsellors' queue snapshot; take next prefers a youth whose
language the counsellor speaks, set through the store as the CLI sets it, and
picked up by an open console without reconnecting."""

from __future__ import annotations

import pytest

from chatserver.client.reference import CallFailed
from chatserver.domain import auth
from tests.conftest import LiveServer


async def test_page_language_is_checked_and_reaches_the_queue(live_server: LiveServer) -> None:
    counsellor = await live_server.staff_client()
    youth = await live_server.youth()
    for bad, code in (("xx", "unknown_language"), ("kurdish!", "bad_payload"), (7, "bad_payload")):
        with pytest.raises(CallFailed) as refused:
            await youth.start({"language": "so"}, page_language=bad)  # type: ignore[arg-type]
        assert refused.value.code == code
    assert len(live_server.ctx.chat.queue) == 0  # nothing changed

    started = await youth.start({"language": "so"}, page_language="fa")
    conv = started["conversation"]
    await counsellor.wait_for(lambda: any(
        e["conversation"] == conv for e in counsellor.queue.get("entries", ())), 5)
    entry = next(e for e in counsellor.queue["entries"] if e["conversation"] == conv)
    assert (entry["language"], entry["page_language"]) == ("so", "fa")
    # A youth page that sends none (an older page, the reference client) still starts.
    other = await live_server.youth()
    plain = (await other.start())["conversation"]
    await counsellor.wait_for(lambda: any(
        e["conversation"] == plain for e in counsellor.queue.get("entries", ())), 5)
    entry = next(e for e in counsellor.queue["entries"] if e["conversation"] == plain)
    assert entry["page_language"] is None


async def test_take_next_prefers_the_counsellors_language(live_server: LiveServer) -> None:
    creds = await live_server.add_staff()
    counsellor = await live_server.staff_client(creds, capacity=5)
    youths = [await live_server.youth() for _ in range(4)]
    first_sv = (await youths[0].start({"language": "sv"}, page_language="sv"))["conversation"]
    ti_page = (await youths[1].start(page_language="ti"))["conversation"]
    ckb_chat = (await youths[2].start({"language": "ckb"}, page_language="sv"))["conversation"]
    last_sv = (await youths[3].start({"language": "sv"}))["conversation"]

    # Set while the console is open, as `chatserver staff languages` does.
    await auth.set_account_languages(creds.username, ("ckb", "ti"), actor="cli",
                                     store=live_server.ctx.store, audit=live_server.ctx.audit)
    taken = [(await counsellor.take_next())["conversation"] for _ in range(3)]
    assert taken == [ti_page, ckb_chat, first_sv]  # then nobody speaks ckb or ti: the oldest
    other = await live_server.staff_client()  # no languages: the oldest, as always
    assert (await other.take_next())["conversation"] == last_sv
