"""Which statistics cells add up to which, and the checks that keep a hidden
cell from being recovered through those sums (docs/statistics.md,
"Suppression").

Every start counts one cell in each of several dimensions (see
``count_profile`` in chatserver/domain/chat/profile.py): a youth's start counts
``contacts/youth`` and one value each of gender, age band, municipality and
topic (``unsaid`` when not answered, so these sum exactly); a professional's
start counts ``contacts/professional``, one profession and one workplace
municipality; every start counts one chat language and one ``contact_kind``;
a youth's start that names a municipality with districts counts one district.
So within a month these *groups* hold: a dimension's cells (the parts) add up
to one or more cells of another (the whole).

A group leaks a hidden cell when the shown cells pin it down: when it is the
only hidden cell of the group, or when the hidden cells' sum (known from the
shown ones) leaves it only one possible value given what each marker says
(``<5``: 1 to 4, or 0 to 4 in a zero-filled dimension; ``..``: at least 5).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Key = tuple[str, str, str]  # (period, dimension, value)

YOUTH = ("contacts", "youth")
PROFESSIONAL = ("contacts", "professional")
# Far above any count: the upper bound of a cell shown as "..".
UNBOUNDED = 10 ** 15


@dataclass(frozen=True)
class Link:
    """The cells of ``parts`` (a dimension) add up to the cells ``wholes``
    ((dimension, value) pairs) within one period."""

    parts: str
    wholes: tuple[tuple[str, str], ...]
    # The profile list that holds the dimension's configured values.
    config: str | None


def links(districts: Mapping[str, Sequence[str]]) -> list[Link]:
    """The groups that hold within a month, for the configured districts."""
    out = [Link(dim, (YOUTH,), config) for dim, config in (
        ("gender", "genders"), ("age_band", "age_bands"), ("municipality", "municipalities"),
        ("topic", "topics"))]
    out += [Link("profession", (PROFESSIONAL,), "professions"),
            Link("workplace_municipality", (PROFESSIONAL,), "municipalities"),
            Link("language", (YOUTH, PROFESSIONAL), "languages"),
            Link("contact_kind", (YOUTH, PROFESSIONAL), None)]
    if districts:
        out.append(Link("district", tuple(("municipality", m) for m in sorted(districts)), None))
    return out


def configured_values(link: Link, profile: Mapping[str, Any]) -> list[str]:
    """Every value the dimension can take under the configuration."""
    if link.parts == "contact_kind":
        return ["first", "returning"]
    if link.parts == "district":
        values = {v for names in profile.get("districts", {}).values() for v in names}
    else:
        values = set(profile.get(link.config or "", ()))
    return sorted(values | {"unsaid"})


def pinned(groups: Sequence[Sequence[tuple[Key, int]]], cells: Mapping[Key, int],
           hidden: Collection[Key], bounds: Callable[[Key], tuple[int, int]]) -> list[Key]:
    """The hidden cells a reader can work out exactly from the shown ones.

    ``groups`` are (cell, sign) lists whose signed sum is zero (a dimension's
    cells +1, the cells they add up to -1), or whose sum a reader is assumed
    to know (a lone dimension). ``bounds`` gives what a hidden cell's marker
    says: (lowest, highest). Two readers are played: one who narrows each
    hidden cell's range by every sum in turn until nothing changes, and one
    who combines the sums linearly (a hidden cell is pinned when some
    combination of the sums holds it alone). Both together are not every
    reader: one combining the sums *and* the ranges at once could do more
    (docs/statistics.md says what is left).
    """
    unknown = sorted({k for g in groups for k, _ in g if k in hidden})
    if not unknown:
        return []
    rows = [[(k, sign) for k, sign in g if k in hidden] for g in groups]
    rows = [r for r in rows if r]
    found = _by_ranges(rows, cells, {k: bounds(k) for k in unknown})
    return sorted(found | _by_combination(rows, unknown))


def _by_ranges(rows: list[list[tuple[Key, int]]], cells: Mapping[Key, int],
               ranges: dict[Key, tuple[int, int]]) -> set[Key]:
    for _ in range(64):  # ranges only shrink; the cap bounds slow convergence
        changed = False
        for row in rows:
            known = sum(sign * cells[k] for k, sign in row)
            spans: list[tuple[Key, int, int, int]] = []
            for k, sign in row:
                a, b = sorted((sign * ranges[k][0], sign * ranges[k][1]))
                spans.append((k, sign, a, b))
            low = sum(a for _, _, a, _ in spans)
            high = sum(b for _, _, _, b in spans)
            for k, sign, a, b in spans:
                # What the rest of the row leaves for this cell.
                x, y = sorted((sign * (known - (high - b)), sign * (known - (low - a))))
                lo, hi = ranges[k]
                new = (max(lo, x), min(hi, y))
                if new != (lo, hi):
                    ranges[k] = new
                    changed = True
        if not changed:
            break
    return {k for k, (lo, hi) in ranges.items() if lo == hi}


# Elimination is done modulo a prime larger than any minor of a matrix of
# 0/±1 entries with this many rows (Hadamard: at most n**(n/2) for n rows),
# so ranks and row spaces are those over the rationals, in integer
# arithmetic. Only rows sharing a cell with another row are combined (the
# linked dimensions, about ten); a row alone can isolate a cell only when it
# holds one hidden cell, which the ranges already find.
_PRIME = 2 ** 127 - 1
_MAX_ROWS = 45  # 45**22.5 < 2**127


def _by_combination(rows: list[list[tuple[Key, int]]], unknown: list[Key]) -> set[Key]:
    """Hidden cells alone in a row of the reduced row echelon form of the
    sums: exactly those some linear combination of the sums isolates."""
    seen = Counter(k for row in rows for k, _ in row)
    rows = [row for row in rows if any(seen[k] > 1 for k, _ in row)]
    if len(rows) > _MAX_ROWS:
        raise ValueError("too many linked sums for exact elimination")
    col = {k: i for i, k in enumerate(unknown)}
    matrix = []
    for row in rows:
        line = [0] * len(unknown)
        for k, sign in row:
            line[col[k]] = (line[col[k]] + sign) % _PRIME
        matrix.append(line)
    pivot_row = 0
    for c in range(len(unknown)):
        pick = next((r for r in range(pivot_row, len(matrix)) if matrix[r][c]), None)
        if pick is None:
            continue
        matrix[pivot_row], matrix[pick] = matrix[pick], matrix[pivot_row]
        inverse = pow(matrix[pivot_row][c], -1, _PRIME)
        lead = matrix[pivot_row] = [v * inverse % _PRIME for v in matrix[pivot_row]]
        for r in range(len(matrix)):
            f = matrix[r][c]
            if r != pivot_row and f:
                matrix[r] = [(v - f * p) % _PRIME for v, p in zip(matrix[r], lead, strict=True)]
        pivot_row += 1
        if pivot_row == len(matrix):
            break
    out = set()
    for line in matrix[:pivot_row]:
        nonzero = [i for i, v in enumerate(line) if v]
        if len(nonzero) == 1:
            out.add(unknown[nonzero[0]])
    return out
