"""The one reading of the statistics: a range of months, small counts suppressed.

The HTTP API, the CSV download and ``chatserver stats export`` all call
``build_report`` and render its rows, so they give the same numbers. The rule
(docs/statistics.md, "Suppression"):

- Each dimension stands alone: there is no cross-tabulation (no "girls in
  Botkyrka"), and nothing is finer than the month.
- A count from 1 to ``threshold - 1`` is shown as ``"<threshold"`` (primary
  suppression). Zero is shown as it is, by being absent: a value nobody chose
  has no row (except as below).
- Each month is suppressed on its own counts alone, so it shows the same in
  every range it is read in. Within a month, no hidden cell may follow from
  the shown ones through the sums that link dimensions (genders to youth
  contacts, languages to all contacts, districts to Stockholm, …;
  ``stats_groups``): while one does, the smallest shown cell of a sum
  holding it is hidden too. A cell hidden this way is at least the
  threshold, so it shows as ``".."`` (hidden to protect another cell),
  never as a false ``"<5"``.
- Where the cells a dimension adds up to are all small or absent, every
  configured value of the dimension gets a row, zeros included, as
  ``"<5"``: which rows exist then tells nothing.
- A range's total of a value is shown only when every month of it is shown
  (it is then a sum of shown figures), else it is ``".."``. So no range less
  its months, and no range less an overlapping range (January–March less
  January–February), gives a hidden month.
- Hand-entered outreach activities (meetings, seminars, trainings) count
  events, not people, and are shown as they are.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chatserver.domain.spreadsheet import text_cell
from chatserver.domain.stats_groups import (
    UNBOUNDED,
    Key,
    Link,
    configured_values,
    links,
    pinned,
)
from chatserver.errors import BadRange
from chatserver.storage.base import StatsStore

MAX_MONTHS = 120
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")  # fullmatch: no trailing newline, ASCII digits
# Hand-entered kinds and the report dimension each belongs to.
MANUAL_KINDS = {"meeting": "outreach", "seminar": "outreach", "training": "outreach",
                "phone": "channel", "visit": "channel"}
UNSUPPRESSED = frozenset({"outreach"})
# The order dimensions are listed in (then any other, alphabetically).
ORDER = ("contacts", "contact_kind", "gender", "age_band", "municipality", "district",
         "topic", "reason", "language", "workplace_municipality", "profession",
         "referral", "referral_partner", "outreach", "channel", "unmet_closed", "unmet_left")
CSV_COLUMNS = ("period", "dimension", "value", "count")
PROTECTING = ".."  # a count of at least the threshold, hidden to protect a small one

Cell = int | str


def parse_month(text: object) -> tuple[int, int]:
    """(year, month) of 'YYYY-MM'; BadRange for anything else."""
    match = _MONTH.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise BadRange()
    year, month = int(match.group(1)), int(match.group(2))
    if not (2000 <= year <= 2999 and 1 <= month <= 12):
        raise BadRange()
    return year, month


def months_between(first: object, last: object) -> list[str]:
    """Every month from ``first`` to ``last``, both included; BadRange if the
    range is malformed, reversed or longer than MAX_MONTHS."""
    y0, m0 = parse_month(first)
    y1, m1 = parse_month(last)
    start, end = y0 * 12 + m0 - 1, y1 * 12 + m1 - 1
    if end < start or end - start + 1 > MAX_MONTHS:
        raise BadRange()
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(start, end + 1)]


@dataclass(frozen=True)
class Report:
    first: str
    last: str
    threshold: int
    months: tuple[str, ...]
    # (period, dimension, value) -> what is shown: an int or "<threshold"
    cells: dict[tuple[str, str, str], Cell] = field(repr=False)

    @property
    def total_period(self) -> str | None:
        """The whole range's period label ('2026-01/2026-12'), None for one month."""
        return f"{self.first}/{self.last}" if len(self.months) > 1 else None

    @property
    def periods(self) -> list[str]:
        total = self.total_period
        return list(self.months) + ([total] if total else [])

    def rows(self) -> list[tuple[str, str, str, Cell]]:
        """(period, dimension, value, count) in a stable order: periods in time
        order (the total last), dimensions in ORDER, values alphabetically."""
        period_rank = {p: i for i, p in enumerate(self.periods)}
        dim_rank = {d: i for i, d in enumerate(ORDER)}
        keys = sorted(self.cells, key=lambda k: (period_rank[k[0]],
                                                 dim_rank.get(k[1], len(ORDER)), k[1], k[2]))
        return [(p, d, v, self.cells[(p, d, v)]) for p, d, v in keys]

    def as_json(self) -> dict[str, Any]:
        return {"from": self.first, "to": self.last, "suppress_below": self.threshold,
                "periods": self.periods, "total_period": self.total_period,
                "rows": [{"period": p, "dimension": d, "value": v, "count": c}
                         for p, d, v, c in self.rows()]}

    def as_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        # Values are codes and names from the configuration and the partner
        # directory; one starting like a formula is still written as text.
        writer.writerows((p, d, text_cell(v), c if isinstance(c, int) else text_cell(c))
                         for p, d, v, c in self.rows())
        return out.getvalue()


Group = list[tuple[Key, int]]


def _groups(cells: dict[Key, int], period: str, group_links: list[Link]
            ) -> tuple[list[Group], list[Group]]:
    """The period's groups as (cell, sign) lists: the linked ones (a
    dimension's cells, +1, with the cells they add up to, -1), and the lone
    ones (any other dimension's cells, as if their sum were shown somewhere:
    one rule for all)."""
    by_dim: dict[str, list[Key]] = {}
    for k in cells:
        if k[0] == period and k[1] not in UNSUPPRESSED:
            by_dim.setdefault(k[1], []).append(k)
    linked_groups: list[Group] = []
    linked = {"contacts"}
    for link in group_links:
        linked.add(link.parts)
        wholes = [(period, *w) for w in link.wholes if (period, *w) in cells]
        parts = by_dim.get(link.parts, [])
        if parts or wholes:
            linked_groups.append([(k, 1) for k in parts] + [(k, -1) for k in wholes])
    lone = [[(k, 1) for k in keys] for dim, keys in by_dim.items() if dim not in linked]
    return linked_groups, lone


def _protect(cells: dict[Key, int], hidden: set[Key],
             groups: tuple[list[Group], list[Group]],
             bounds: Callable[[Key], tuple[int, int]]) -> None:
    """Until no hidden cell can be worked out from the shown ones through
    the groups' sums: hide the smallest shown cell of a group holding such a
    cell (or, if none is left there, of a linked group sharing a hidden cell
    with one). Each step hides one more cell, so it ends. A lone dimension
    whose cells are all hidden is left as it is: its sum is not really
    shown anywhere, and there is nothing beside it to hide."""
    linked, lone = groups
    every = linked + lone
    while True:
        step = None
        for cell in pinned(every, cells, hidden, bounds):
            near = [g for g in every if any(k == cell for k, _ in g)]
            shown = [k for g in near for k, _ in g if k not in hidden]
            if not shown:
                touched = {k for g in near for k, _ in g}
                shown = [k for g in linked if any(k in touched for k, _ in g)
                         for k, _ in g if k not in hidden]
            if shown:
                step = min(shown, key=lambda k: (cells[k], k[1], k[2]))
                break
        if step is None:
            return
        hidden.add(step)


def _zero_fill(cells: dict[Key, int], hidden: set[Key], month: str,
               group_links: list[Link], profile: Mapping[str, Any]) -> set[tuple[str, str]]:
    """A row says "at least one": where the cells a dimension adds up to are
    all small (or absent), every configured value of the dimension gets a
    row, zeros included, all hidden, so which rows exist tells nothing.
    Decided on the markers of the whole alone, so the choice itself tells
    nothing either. Returns the (month, dimension) pairs filled."""
    filled: set[tuple[str, str]] = set()
    for link in group_links:  # districts last: their whole is a municipality cell
        wholes = [(month, *w) for w in link.wholes if (month, *w) in cells]
        if not wholes or not all(w in hidden for w in wholes):
            continue
        present = [k[2] for k in cells if k[0] == month and k[1] == link.parts]
        for value in set(configured_values(link, profile)) | set(present):
            key = (month, link.parts, value)
            cells.setdefault(key, 0)
            hidden.add(key)
        filled.add((month, link.parts))
    return filled


def suppress(raw: dict[Key, int], months: Iterable[str], total: str | None, threshold: int,
             profile: Mapping[str, Any] | None = None) -> dict[Key, Cell]:
    """Apply the suppression rule to raw counts keyed (period, dimension,
    value); ``total`` is the period label of the range's total (None when
    the range is one month); ``profile`` is the service's profile
    configuration (the values each dimension can take, and the districts).
    Zero counts are dropped, except in a zero-filled dimension.

    Each month is suppressed on its own cells only, so a month shows the same
    in every range it is read in; a range total is shown only when every
    month of it is shown, so it is a sum of figures already shown. Neither
    two overlapping ranges (January–March less January–February) nor a range
    less its months can then recover a hidden month.
    """
    profile = profile or {}
    group_links = links(profile.get("districts", {}))
    month_list = list(months)
    month_set = set(month_list)
    cells = {k: n for k, n in raw.items() if n > 0}
    hidden = {k for k, n in cells.items()
              if k[0] in month_set and n < threshold and k[1] not in UNSUPPRESSED}
    filled: set[tuple[str, str]] = set()
    for month in month_list:
        filled |= _zero_fill(cells, hidden, month, group_links, profile)

    def month_bounds(k: Key) -> tuple[int, int]:
        if cells[k] >= threshold:
            return threshold, UNBOUNDED
        return (0 if (k[0], k[1]) in filled else 1), threshold - 1

    for month in month_list:
        _protect(cells, hidden, _groups(cells, month, group_links), month_bounds)
    if total is not None:
        for k in [k for k in hidden if k[0] in month_set]:
            cells.setdefault((total, k[1], k[2]), 0)  # a zero-filled value has a total row
        for k in [k for k in cells if k[0] == total]:
            if k[1] not in UNSUPPRESSED and any((m, k[1], k[2]) in hidden for m in month_set):
                hidden.add(k)
        # A hidden total says nothing of its size, so only its group's sum
        # can pin it down; needed when a month's group held a single cell.
        _protect(cells, hidden, _groups(cells, total, group_links),
                 lambda k: (0, UNBOUNDED))
    # A hidden total is always "..", never "<5": four hidden months under a
    # total marked "<5" would each be exactly 1.
    small = f"<{threshold}"
    return {k: ((small if n < threshold and k[0] != total else PROTECTING)
                if k in hidden else n)
            for k, n in cells.items()}


async def build_report(store: StatsStore, first: str, last: str, threshold: int,
                       profile: Mapping[str, Any] | None = None) -> Report:
    """Read ``first``..``last`` ('YYYY-MM') and apply the suppression rule;
    ``profile`` is ``settings.service["profile"]`` (the values each
    dimension can take, and the districts)."""
    months = months_between(first, last)
    counts = await store.counts_between(months[0], months[-1])
    manual = await store.manual_counts_between(months[0], months[-1])
    raw: dict[tuple[str, str, str], int] = {}
    for (month, dim, value), n in counts.items():
        raw[(month, dim, value)] = raw.get((month, dim, value), 0) + n
    for (month, kind), n in manual.items():
        if kind in MANUAL_KINDS:
            raw[(month, MANUAL_KINDS[kind], kind)] = n
    total = f"{months[0]}/{months[-1]}" if len(months) > 1 else None
    if total is not None:
        for (_, dim, value), n in list(raw.items()):
            raw[(total, dim, value)] = raw.get((total, dim, value), 0) + n
    # Checking every month's sums takes up to about a second for 120 busy
    # months: off the event loop, so chats are not held up meanwhile.
    cells = await asyncio.to_thread(suppress, raw, months, total, threshold, profile)
    return Report(first=months[0], last=months[-1], threshold=threshold,
                  months=tuple(months), cells=cells)
