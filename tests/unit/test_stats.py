"""Monthly statistics, buffered in memory and flushed in batches (domain/stats.py)."""

from __future__ import annotations

import calendar
from collections.abc import Mapping

import pytest

from chatserver.domain.clock import FakeClock
from chatserver.domain.stats import StatsCounter, month_of
from chatserver.storage.sqlite import SqliteStore

JAN_31_23H = float(calendar.timegm((2027, 1, 31, 23, 0, 0)))


# store: tests/unit/conftest.py


def test_month_is_utc() -> None:
    assert month_of(JAN_31_23H) == "2027-01"
    assert month_of(JAN_31_23H + 3600) == "2027-02"  # midnight UTC, not local time


async def test_counts_are_buffered_until_flush(store: SqliteStore) -> None:
    stats = StatsCounter(FakeClock(JAN_31_23H))
    stats.count("municipality", "Upplands Väsby")
    stats.count("topic", "forced_marriage")
    stats.count("topic", "forced_marriage")
    stats.count("contacts", "started")
    # Given counts taken, nothing is in the database yet.
    assert await store.get_counts("2027-01") == {}
    assert stats.pending() == 4
    assert await stats.flush(store) == 4
    assert stats.pending() == 0
    assert await store.get_counts("2027-01") == {
        ("municipality", "Upplands Väsby"): 1,
        ("topic", "forced_marriage"): 2,
        ("contacts", "started"): 1,
    }
    # A second flush writes nothing more.
    assert await stats.flush(store) == 0
    assert (await store.get_counts("2027-01"))[("topic", "forced_marriage")] == 2


async def test_flushes_add_up(store: SqliteStore) -> None:
    stats = StatsCounter(FakeClock(JAN_31_23H))
    for _ in range(3):
        stats.count("gender", "girl")
        await stats.flush(store)
    stats.count("gender", "girl", 5)
    await stats.flush(store)
    assert await store.get_counts("2027-01") == {("gender", "girl"): 8}


async def test_counts_land_in_the_month_they_were_taken(store: SqliteStore) -> None:
    clock = FakeClock(JAN_31_23H)
    stats = StatsCounter(clock)
    stats.count("age_band", "16-17")
    clock.advance(3600)
    stats.count("age_band", "16-17")
    stats.count("age_band", "13-15")
    await stats.flush(store)
    assert await store.get_counts("2027-01") == {("age_band", "16-17"): 1}
    assert await store.get_counts("2027-02") == {("age_band", "16-17"): 1,
                                                 ("age_band", "13-15"): 1}


@pytest.mark.parametrize(
    ("dimension", "value", "n"),
    [
        ("page_language", "sv", 1),  # not a statistics dimension
        ("conversation", "c-1a2b3c4d", 1),
        ("topic", "", 1),
        ("topic", "x" * 65, 1),
        ("topic", "line\nbreak", 1),
        ("topic", "other", 0),
    ],
)
def test_bad_counts_are_refused(dimension: str, value: str, n: int) -> None:
    stats = StatsCounter(FakeClock())
    with pytest.raises(ValueError):
        stats.count(dimension, value, n)
    assert stats.pending() == 0


class FailingStore:
    def __init__(self, fail_on: str) -> None:
        self.fail_on = fail_on
        self.written: dict[str, dict[tuple[str, str], int]] = {}

    async def add_counts(self, month: str, counts: Mapping[tuple[str, str], int]) -> None:
        if month == self.fail_on:
            raise OSError("disk full")
        self.written[month] = dict(counts)

    async def get_counts(self, month: str) -> dict[tuple[str, str], int]:
        return self.written.get(month, {})


async def test_a_failed_flush_keeps_what_was_not_written() -> None:
    clock = FakeClock(JAN_31_23H)
    stats = StatsCounter(clock)
    stats.count("topic", "threat")
    clock.advance(3600)
    stats.count("topic", "threat", 2)
    failing = FailingStore(fail_on="2027-02")
    with pytest.raises(OSError):
        await stats.flush(failing)
    assert failing.written == {"2027-01": {("topic", "threat"): 1}}
    assert stats.pending() == 2  # February is kept, January is not counted twice
    failing.fail_on = ""
    assert await stats.flush(failing) == 2
    assert failing.written["2027-02"] == {("topic", "threat"): 2}
