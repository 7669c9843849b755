"""The staff-work log's filters and summaries (chatserver/domain/worklog.py)
over a real audit log on SQLite, written with a fake clock."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from chatserver.domain.audit import AuditLog
from chatserver.domain.clock import FakeClock
from chatserver.domain.worklog import (
    PAGE_SIZE,
    entries,
    entries_csv,
    period,
    summaries,
    summaries_csv,
)
from chatserver.errors import BadRange
from chatserver.storage.sqlite import SqliteStore

KEY = bytes(range(32))


def at(day: int, hour: float) -> float:
    return datetime(2027, 3, day, tzinfo=UTC).timestamp() + hour * 3600


async def shift(store: SqliteStore) -> None:
    """anna: on 1 March 22:00 – 2 March 02:00 (over midnight), one claim on
    the 1st, referrals on the 2nd; bo: on from 2 March 09:00, never off."""
    clock = FakeClock(at(1, 22))
    log = AuditLog(store, clock, KEY)
    await log.record("anna", "duty_on", on=True)
    clock.advance(600)
    await log.record("anna", "claim", "c-00000001", waited_secs=4)
    await log.record("youth", "conversation_start", "c-00000002")
    clock.advance(3 * 3600)
    await log.record("anna", "referral", "c-00000001", partner="p1", role="police")
    await log.record("anna", "referral", "c-00000001", partner="p2", role="shelter")
    await log.record("anna", "referral", "c-00000001", partner="p3", role="police")
    await log.record("anna", "transfer_offered", "c-00000001", target="bo")
    await log.record("anna", "return_issued")
    await log.record("anna", "invite_created", "c-00000001", role="police")
    clock.advance(3000)
    await log.record("anna", "duty_off", on=False)  # 2 March 02:00
    clock.advance(7 * 3600)
    await log.record("bo", "duty_on", on=True)  # 2 March 09:00
    await log.record("bo", "transfer_accepted", "c-00000001")


async def test_summaries_split_duty_at_the_period_and_count_per_member(
        store: SqliteStore) -> None:
    await shift(store)
    now = at(2, 12)  # bo has been on duty three hours
    first = {s.actor: s.as_json() for s in
             await summaries(store.iter_audit(), period("2027-03-01", "2027-03-01", now), now)}
    assert set(first) == {"anna"}  # the youth is no staff member
    assert first["anna"]["duty_hours"] == 2.0 and first["anna"]["claims"] == 1
    assert first["anna"]["referrals_total"] == 0
    both = {s.actor: s for s in
            await summaries(store.iter_audit(), period("2027-03-01", "2027-03-02", now), now)}
    anna, bo = both["anna"].as_json(), both["bo"].as_json()
    assert anna["duty_hours"] == 4.0
    assert anna["referrals"] == {"police": 2, "shelter": 1}
    assert (anna["transfers_offered"], anna["return_codes"], anna["invites"]) == (1, 1, 1)
    assert (bo["duty_hours"], bo["transfers_accepted"], bo["claims"]) == (3.0, 1, 0)
    rows = list(csv.reader(io.StringIO(summaries_csv(list(both.values())))))
    assert rows[0] == ["staff", "duty_hours", "claims", "transfers_offered",
                       "transfers_accepted", "referrals", "referrals_police",
                       "referrals_shelter", "invites", "return_codes"]
    assert rows[1] == ["anna", "4.0", "1", "1", "0", "3", "2", "1", "1", "1"]
    assert rows[2] == ["bo", "3.0", "0", "0", "1", "0", "0", "0", "0", "0"]


async def test_entries_filter_by_member_action_and_days_newest_first(
        store: SqliteStore) -> None:
    await shift(store)
    now = at(3, 0)
    page = await entries(store.iter_audit(), period("2027-03-02", "2027-03-02", now),
                         "anna", "", 1)
    assert [e["action"] for e in page.entries] == [
        "duty_off", "invite_created", "return_issued", "transfer_offered", "referral",
        "referral", "referral"]
    assert page.total == 7 and page.actors == ["anna", "bo"]
    refs = await entries(store.iter_audit(), period("2027-03-01", "2027-03-02", now),
                         "", "referral", None)
    assert [e["detail"] for e in refs.entries] == [
        {"partner": "p3", "role": "police"}, {"partner": "p2", "role": "shelter"},
        {"partner": "p1", "role": "police"}]
    lines = entries_csv(refs).splitlines()
    assert lines[0] == "seq,at,actor,action,conversation,detail"
    assert lines[1].endswith(',anna,referral,c-00000001,"{""partner"":""p3"",""role"":""police""}"')


async def test_entries_are_paged(store: SqliteStore) -> None:
    clock = FakeClock(at(5, 8))
    log = AuditLog(store, clock, KEY)
    for _ in range(PAGE_SIZE + 3):
        await log.record("anna", "tagged", "c-00000001", count=1)
    p = period("2027-03-05", "2027-03-05", clock.now())
    one = await entries(store.iter_audit(), p, "", "", 1)
    two = await entries(store.iter_audit(), p, "", "", 2)
    assert (one.total, one.pages, len(one.entries), len(two.entries)) == (53, 2, 50, 3)
    assert two.entries[-1]["seq"] == 1
    assert (await entries(store.iter_audit(), p, "", "", 99)).page == 2


@pytest.mark.parametrize("first,last", [("2027-03-02", "2027-03-01"), ("2027-3-1", "2027-03-01"),
                                        ("2027-02-30", "2027-03-01"), ("", "2027-03-01"),
                                        ("2000-01-01", "2027-03-01")])
def test_bad_periods_are_refused(first: str, last: str) -> None:
    with pytest.raises(BadRange):
        period(first, last, at(3, 0))


def test_no_period_means_the_last_thirty_days() -> None:
    p = period("", "", at(31, 12))
    assert (p.first, p.last) == ("2027-03-02", "2027-03-31")
