"""The statistics report: ranges, hour-of-week bands and the suppression rule,
with hand-made counts (domain/stats_report.py, docs/statistics.md)."""

from __future__ import annotations

import calendar
from collections import Counter
from pathlib import Path

import pytest

from chatserver.domain.clock import FakeClock
from chatserver.domain.stats import BANDS, StatsCounter, hour_band
from chatserver.domain.stats_report import build_report, months_between, suppress
from chatserver.errors import BadRange
from chatserver.settings import ConfigError
from chatserver.storage.sqlite import SqliteStore
from tests.conftest import make_settings

STHLM = "Europe/Stockholm"


def utc(*parts: int) -> float:
    return float(calendar.timegm((*parts, 0)))


# ---------------------------------------------------------------- ranges

def test_a_range_lists_every_month_across_a_year_end() -> None:
    assert months_between("2026-11", "2027-02") == ["2026-11", "2026-12", "2027-01", "2027-02"]
    assert months_between("2026-03", "2026-03") == ["2026-03"]
    assert len(months_between("2020-01", "2029-12")) == 120


@pytest.mark.parametrize(("first", "last"), [
    ("2026-04", "2026-03"),  # reversed
    ("2026-1", "2026-03"), ("2026-13", "2026-12"), ("2026-00", "2026-01"),
    ("26-01", "26-02"), ("", "2026-01"), ("2026-01", None), ("2026-01 ", "2026-02"),
    ("2026-01\n", "2026-02"), ("２０２６-01", "2026-02"),  # a newline, full-width digits
    ("2020-01", "2030-01"),  # 121 months
    ("1999-12", "2000-01"),
])
def test_bad_ranges_are_refused(first: object, last: object) -> None:
    with pytest.raises(BadRange):
        months_between(first, last)


# ----------------------------------------------------------------- bands

@pytest.mark.parametrize(("when", "band"), [
    (utc(2026, 12, 7, 7, 59), "weekday_day"),       # Monday 08:59 in Stockholm (UTC+1)
    (utc(2026, 12, 7, 6, 59), "weekday_night"),     # Monday 07:59
    (utc(2026, 12, 7, 16, 0), "weekday_evening"),   # Monday 17:00
    (utc(2026, 12, 7, 21, 0), "weekday_night"),     # Monday 22:00
    (utc(2026, 12, 11, 22, 30), "weekday_night"),   # Friday 23:30: still a weekday
    (utc(2026, 12, 12, 2, 0), "weekend_night"),     # Saturday 03:00
    (utc(2026, 12, 13, 12, 0), "weekend_day"),      # Sunday 13:00
    (utc(2026, 12, 13, 19, 0), "weekend_evening"),  # Sunday 20:00
    (utc(2026, 7, 6, 6, 30), "weekday_day"),        # Monday 08:30 in summer (UTC+2)
])
def test_hour_of_week_bands_are_local_time(when: float, band: str) -> None:
    assert hour_band(when, STHLM) == band
    assert band in BANDS


def test_the_same_instant_falls_in_the_zone_s_own_band() -> None:
    monday_0730_utc = utc(2026, 12, 7, 7, 30)
    assert hour_band(monday_0730_utc, "UTC") == "weekday_night"
    assert hour_band(monday_0730_utc, STHLM) == "weekday_day"


# ------------------------------------------------------------ suppression

def test_small_counts_show_as_less_than_the_threshold_and_zeros_have_no_row() -> None:
    raw = {("2026-01", "gender", "girl"): 12, ("2026-01", "gender", "boy"): 3,
           ("2026-01", "gender", "nonbinary"): 2, ("2026-01", "gender", "other"): 0,
           ("2026-01", "age_band", "13-15"): 5}
    cells = suppress(raw, ["2026-01"], None, 5)
    assert cells == {("2026-01", "gender", "girl"): 12, ("2026-01", "gender", "boy"): "<5",
                     ("2026-01", "gender", "nonbinary"): "<5",
                     ("2026-01", "age_band", "13-15"): 5}


def test_one_suppressed_cell_takes_the_next_smallest_with_it() -> None:
    # Youth contacts (20) are shown elsewhere: with boy alone hidden,
    # 20 - 11 - 6 would give boy = 3.
    raw = {("2026-01", "gender", "girl"): 11, ("2026-01", "gender", "nonbinary"): 6,
           ("2026-01", "gender", "boy"): 3, ("2026-01", "gender", "unsaid"): 9}
    cells = suppress(raw, ["2026-01"], None, 5)
    assert cells[("2026-01", "gender", "boy")] == "<5"
    assert cells[("2026-01", "gender", "nonbinary")] == ".."  # the next smallest, not "<5"
    assert cells[("2026-01", "gender", "unsaid")] == 9
    assert cells[("2026-01", "gender", "girl")] == 11


def test_the_threshold_is_a_setting() -> None:
    raw = {("2026-01", "topic", "fgm"): 6, ("2026-01", "topic", "control"): 7,
           ("2026-01", "topic", "violence"): 30}
    assert suppress(raw, ["2026-01"], None, 5)[("2026-01", "topic", "fgm")] == 6
    cells = suppress(raw, ["2026-01"], None, 10)
    assert cells[("2026-01", "topic", "fgm")] == "<10"
    assert cells[("2026-01", "topic", "control")] == "<10"  # both small: no protector needed
    assert cells[("2026-01", "topic", "violence")] == 30


def test_a_range_total_cannot_reveal_one_suppressed_month() -> None:
    months = ["2026-01", "2026-02", "2026-03"]
    total = "2026-01/2026-03"
    raw = {("2026-01", "municipality", "Solna"): 7, ("2026-02", "municipality", "Solna"): 2,
           ("2026-03", "municipality", "Solna"): 6, (total, "municipality", "Solna"): 15,
           # other values keep each month's own group from needing a second cell
           ("2026-01", "municipality", "Botkyrka"): 40, ("2026-02", "municipality", "Botkyrka"): 1,
           ("2026-02", "municipality", "Nacka"): 30, ("2026-03", "municipality", "Botkyrka"): 40,
           (total, "municipality", "Botkyrka"): 81, (total, "municipality", "Nacka"): 30}
    cells = suppress(raw, months, total, 5)
    m = "municipality"
    assert cells == {
        # February's two small counts are primary; January and March are
        # shown as each month alone shows them.
        ("2026-02", m, "Solna"): "<5", ("2026-02", m, "Botkyrka"): "<5",
        ("2026-02", m, "Nacka"): 30,
        ("2026-01", m, "Solna"): 7, ("2026-01", m, "Botkyrka"): 40,
        ("2026-03", m, "Solna"): 6, ("2026-03", m, "Botkyrka"): 40,
        # 15 - 7 - 6 would give February: a total over a hidden month is hidden
        # (as "..", never "<5"); Nacka's months are all shown, so its total is.
        (total, m, "Solna"): "..", (total, m, "Botkyrka"): "..", (total, m, "Nacka"): 30,
    }


def _shown(report_cells: dict[tuple[str, str, str], object]) -> dict[tuple[str, str, str], int]:
    return {k: v for k, v in report_cells.items() if isinstance(v, int)}


async def test_overlapping_ranges_cannot_be_subtracted(store: SqliteStore) -> None:
    # Hand-made counts: Solna has 10 in January and February and 3 in March.
    # Read as January–March and as January–February, the two totals (23 and
    # 20) would give March's 3 by difference; so would January–March less
    # the months read one at a time.
    per_month = {"2026-01": {"Solna": 10, "Nacka": 20}, "2026-02": {"Solna": 10, "Nacka": 20},
                 "2026-03": {"Solna": 3, "Nacka": 20},
                 "2026-04": {"Solna": 9, "Nacka": 20}}
    for month, counts in per_month.items():
        await store.add_counts(month, Counter({("municipality", v): n for v, n in counts.items()}))

    months = list(per_month)
    reports = {(a, b): await build_report(store, a, b, 5)
               for i, a in enumerate(months) for b in months[i:]}
    jan_mar = reports[("2026-01", "2026-03")].cells
    jan_feb = reports[("2026-01", "2026-02")].cells
    assert jan_mar[("2026-01/2026-03", "municipality", "Solna")] == ".."
    assert jan_feb[("2026-01/2026-02", "municipality", "Solna")] == 20
    assert jan_mar[("2026-03", "municipality", "Solna")] == "<5"
    # Every month shows the same in every range it is read in ...
    for (a, b), report in reports.items():
        for (period, dim, value), cell in report.cells.items():
            if period in months:
                assert cell == reports[(period, period)].cells[(period, dim, value)], (a, b)
    # ... and every total shown is the sum of its months as shown, so nothing
    # read from any range is more than the months alone tell.
    for (a, b), report in reports.items():
        if report.total_period is None:
            continue
        for (period, dim, value), cell in _shown(report.cells).items():
            if period == report.total_period:
                parts = [report.cells.get((m, dim, value), 0) for m in report.months]
                assert all(isinstance(p, int) for p in parts), (a, b, value)
                assert cell == sum(p for p in parts if isinstance(p, int))


def test_outreach_activities_are_events_not_people_and_shown_as_they_are() -> None:
    raw = {("2026-01", "outreach", "seminar"): 2, ("2026-01", "outreach", "meeting"): 9,
           ("2026-01", "channel", "phone"): 2, ("2026-01", "channel", "visit"): 8}
    cells = suppress(raw, ["2026-01"], None, 5)
    assert cells[("2026-01", "outreach", "seminar")] == 2
    assert cells[("2026-01", "channel", "phone")] == "<5"
    assert cells[("2026-01", "channel", "visit")] == ".."


# ------------------------------------------------------- the whole report

async def test_report_reads_counts_and_manual_entries_of_the_range_only(
        store: SqliteStore) -> None:
    clock = FakeClock(utc(2026, 1, 10, 12, 0))
    stats = StatsCounter(clock)
    stats.count("contacts", "youth", 9)
    stats.count("gender", "girl", 6)
    stats.count("gender", "boy", 3)
    clock.advance(31 * 86400)  # February
    stats.count("contacts", "youth", 2)
    stats.count("gender", "girl", 2)
    clock.advance(31 * 86400)  # March: outside the range below
    stats.count("contacts", "youth", 50)
    await stats.flush(store)
    await store.set_manual_count("2026-02", "seminar", 3)
    await store.set_manual_count("2026-03", "seminar", 7)

    report = await build_report(store, "2026-01", "2026-02", 5)
    assert report.periods == ["2026-01", "2026-02", "2026-01/2026-02"]
    rows = {(p, d, v): c for p, d, v, c in report.rows()}
    assert rows[("2026-02", "contacts", "youth")] == "<5"
    # February is hidden, so the range's total is too (11 - 9 would give it);
    # January shows as it does on its own.
    assert rows[("2026-01/2026-02", "contacts", "youth")] == ".."
    assert rows[("2026-01", "contacts", "youth")] == 9
    assert rows[("2026-01", "gender", "boy")] == "<5"
    assert rows[("2026-01", "gender", "girl")] == ".."  # secondary, in January's group
    # Over the range: a total with a hidden month is hidden, whatever its size.
    assert rows[("2026-01/2026-02", "gender", "boy")] == ".."
    assert rows[("2026-01/2026-02", "gender", "girl")] == ".."
    assert rows[("2026-02", "outreach", "seminar")] == 3
    assert ("2026-03", "outreach", "seminar") not in rows
    csv_text = report.as_csv()
    assert csv_text.splitlines()[0] == "period,dimension,value,count"
    assert "2026-01/2026-02,contacts,youth,.." in csv_text.splitlines()
    assert report.as_json()["rows"][0] == {"period": "2026-01", "dimension": "contacts",
                                           "value": "youth", "count": 9}


@pytest.mark.parametrize(("key", "value"), [
    ("stats_suppress_below", 1), ("stats_suppress_below", 0), ("stats_suppress_below", 101),
    ("stats_timezone", "Mars/Olympus"),
    ("stats_timezone", "/".join(["..", "etc", "localtime"])),  # a path, not a zone
])
def test_bad_statistics_settings_stop_the_start(tmp_path: Path, key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=key):
        make_settings(tmp_path, **{key: value})


def test_the_settings_have_their_documented_defaults(tmp_path: Path) -> None:
    s = make_settings(tmp_path)
    assert (s.stats_suppress_below, s.stats_timezone) == (5, "Europe/Stockholm")
    assert make_settings(tmp_path, stats_suppress_below=10).stats_suppress_below == 10


async def test_csv_cells_that_look_like_formulas_are_written_as_text(
        store: SqliteStore) -> None:
    # A partner code may start with '-' ("-2-3" is a formula to a
    # spreadsheet); any value starting with = + - @ must reach the sheet as text.
    await store.add_counts("2026-05", Counter({("referral_partner", "-2-3"): 9,
                                               ("referral_partner", "=HYPERLINK(x)"): 8,
                                               ("referral_partner", "bris"): 7}))
    report = await build_report(store, "2026-05", "2026-05", 5)
    lines = report.as_csv().splitlines()
    assert "2026-05,referral_partner,'-2-3,9" in lines
    assert "2026-05,referral_partner,'=HYPERLINK(x),8" in lines
    assert "2026-05,referral_partner,bris,7" in lines
    # JSON carries the values as they are: only the spreadsheet file is guarded.
    assert {"period": "2026-05", "dimension": "referral_partner", "value": "-2-3",
            "count": 9} in report.as_json()["rows"]
