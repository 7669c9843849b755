"""Suppression across dimensions: no hidden cell can be worked out from shown
cells through the sums that link dimensions, and which rows exist tells
nothing in a quiet month (domain/stats_report.py, docs/statistics.md).

The months are hand-made: lists of starts, counted the way a start is
counted (one cell per dimension, ``unsaid`` for a question not answered).
The reader below is written apart from the code under test: it knows the
rule, every shown cell and which dimensions add up to which."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chatserver.domain.stats_report import suppress

T = 5
SMALL = f"<{T}"
PROFILE: dict[str, Any] = {
    "genders": ["girl", "boy", "nonbinary"], "age_bands": ["13-15", "16-17", "18-20"],
    "municipalities": ["Botkyrka", "Solna", "Stockholm"], "topics": ["control", "violence"],
    "languages": ["sv", "ar", "so"], "professions": ["school", "police"],
    "districts": {"Stockholm": ["Bromma", "Farsta", "other"]},
}
YOUTH_DIMS = {"gender": "genders", "age_band": "age_bands", "municipality": "municipalities",
              "topic": "topics"}
PRO_DIMS = {"profession": "professions", "workplace_municipality": "municipalities"}
Key = tuple[str, str, str]


def count(month: str, youths: list[dict[str, str]], pros: list[dict[str, str]]
          ) -> dict[Key, int]:
    """Raw counts of the starts, one cell per dimension per start."""
    c: Counter[Key] = Counter()
    for start in youths + pros:
        c[(month, "contact_kind", start["contact_kind"])] += 1
        c[(month, "language", start["language"])] += 1
    for y in youths:
        c[(month, "contacts", "youth")] += 1
        for dim in YOUTH_DIMS:
            c[(month, dim, y[dim])] += 1
        if y["municipality"] == "Stockholm":
            c[(month, "district", y["district"])] += 1
    for p in pros:
        c[(month, "contacts", "professional")] += 1
        for dim in PRO_DIMS:
            c[(month, dim, p[dim])] += 1
    return dict(c)


def sums(period: str, cells: dict[Key, Any]) -> list[tuple[list[Key], list[Key]]]:
    """(parts, wholes): the cells of ``parts`` add up to those of ``wholes``."""
    def dim(name: str) -> list[Key]:
        return [k for k in cells if k[0] == period and k[1] == name]
    youth, pro = (period, "contacts", "youth"), (period, "contacts", "professional")
    out = [(dim(d), [youth]) for d in YOUTH_DIMS]
    out += [(dim(d), [pro]) for d in PRO_DIMS]
    out += [(dim("language"), [youth, pro]), (dim("contact_kind"), [youth, pro]),
            (dim("district"), [(period, "municipality", "Stockholm")])]
    return [([k for k in p if k in cells], [k for k in w if k in cells]) for p, w in out]


P = 2 ** 89 - 1  # a prime above any minor of these small 0/±1 matrices


def _rank(rows: list[list[int]]) -> int:
    """Rank over the integers modulo P (the rank over the rationals here)."""
    m = [[v % P for v in r] for r in rows]
    rank = 0
    for c in range(len(m[0]) if m else 0):
        pick = next((r for r in range(rank, len(m)) if m[r][c]), None)
        if pick is None:
            continue
        m[rank], m[pick] = m[pick], m[rank]
        inv = pow(m[rank][c], -1, P)
        for r in range(rank + 1, len(m)):
            f = m[r][c] * inv % P
            m[r] = [(a - f * b) % P for a, b in zip(m[r], m[rank], strict=True)]
        rank += 1
    return rank


def recoverable(period: str, cells: dict[Key, Any], *, in_total: bool = False) -> set[Key]:
    """Every hidden cell a reader can work out exactly from what is shown:
    alone hidden in a sum, fixed by the range its marker allows within one
    sum, or isolated by combining the sums linearly."""
    hidden = [k for k in cells if k[0] == period and not isinstance(cells[k], int)]
    groups = sums(period, cells)
    filled = {p[0][1] for p, w in groups if p and w and all(cells[k] == SMALL for k in w)}

    def bounds(k: Key) -> tuple[int, int]:
        if in_total or cells[k] == "..":
            return (0 if in_total else T), 10 ** 9
        return (0 if k[1] in filled else 1), T - 1

    found: set[Key] = set()
    for parts, wholes in groups:
        signed = [(k, 1) for k in parts] + [(k, -1) for k in wholes]
        hid = [(k, s) for k, s in signed if k in hidden]
        if len(hid) == 1:
            found.add(hid[0][0])
            continue
        rest = sum(-s * cells[k] for k, s in signed if k not in hidden)  # hidden signed sum
        for k, s in hid:
            others = [(s2 * bounds(k2)[0], s2 * bounds(k2)[1]) for k2, s2 in hid if k2 != k]
            lo = rest - sum(max(a, b) for a, b in others)
            hi = rest - sum(min(a, b) for a, b in others)
            lo, hi = sorted((s * lo, s * hi))
            if max(lo, bounds(k)[0]) == min(hi, bounds(k)[1]):
                found.add(k)
    # Some combination of the sums holds cell i alone exactly when leaving
    # its column out lowers the rank.
    columns = sorted({k for p, w in groups for k in p + w if k in hidden})
    rows = [[int(k in p) - int(k in w) for k in columns] for p, w in groups]
    rows = [r for r in rows if any(r)]
    base = _rank(rows)
    for i, k in enumerate(columns):
        if _rank([r[:i] + r[i + 1:] for r in rows]) < base:
            found.add(k)
    return found


# -------------------------------------------------------- hand-made months

def youth(gender: str = "girl", age: str = "13-15", mun: str = "Botkyrka", topic: str = "control",
          lang: str = "sv", kind: str = "first", district: str = "Bromma") -> dict[str, str]:
    return {"gender": gender, "age_band": age, "municipality": mun, "topic": topic,
            "language": lang, "contact_kind": kind, "district": district}


def pro(profession: str = "school", mun: str = "Solna", lang: str = "sv",
        kind: str = "first") -> dict[str, str]:
    return {"profession": profession, "workplace_municipality": mun, "language": lang,
            "contact_kind": kind}


def test_a_hidden_contact_count_is_not_the_difference_of_two_shown_sums() -> None:
    # The example: 30 youths, 3 professionals. Genders 20 + 10, contact
    # kinds 25 + 8: by the old rule youth was hidden as ".." to protect the
    # professionals, and 33 - 30 gave them back.
    youths = ([youth("girl", kind="first")] * 20 + [youth("boy", kind="first")] * 5
              + [youth("boy", kind="returning")] * 5)
    pros = [pro(kind="returning")] * 3
    raw = count("2026-01", youths, pros)
    cells = suppress(raw, ["2026-01"], None, T, PROFILE)
    assert cells[("2026-01", "contacts", "professional")] == SMALL
    assert recoverable("2026-01", cells) == set()
    # Something in every sum the professionals are part of is hidden with them.
    for parts, wholes in sums("2026-01", cells):
        if ("2026-01", "contacts", "professional") in wholes:
            assert any(not isinstance(cells[k], int) for k in parts + wholes
                       if k != ("2026-01", "contacts", "professional"))


def test_stockholm_hidden_beside_a_small_municipality_is_not_the_sum_of_its_districts() -> None:
    # Solna 2 is hidden, Stockholm (6) hidden with it; Stockholm's one
    # district row, Bromma 6, shown, would give Stockholm and so Solna.
    youths = ([youth(mun="Stockholm", district="Bromma")] * 6 + [youth(mun="Solna")] * 2
              + [youth(mun="Botkyrka")] * 20)
    cells = suppress(count("2026-02", youths, []), ["2026-02"], None, T, PROFILE)
    assert cells[("2026-02", "municipality", "Solna")] == SMALL
    assert cells[("2026-02", "municipality", "Stockholm")] == ".."
    assert cells[("2026-02", "district", "Bromma")] == ".."
    assert recoverable("2026-02", cells) == set()


def test_a_fully_shown_dimension_does_not_give_away_a_hidden_whole() -> None:
    # Youth hidden to protect the professionals: the age bands, all shown,
    # add up to it, so a single hidden gender must not stand beside it.
    youths = [youth("girl", "13-15")] * 12 + [youth("boy", "16-17")] * 3 + \
        [youth("nonbinary", "16-17", lang="ar")] * 6
    cells = suppress(count("2026-03", youths, [pro()] * 2), ["2026-03"], None, T, PROFILE)
    assert recoverable("2026-03", cells) == set()


def test_in_a_quiet_month_every_configured_value_has_a_row() -> None:
    # Three youths, all girls from Botkyrka: rows only for "girl" and
    # "Botkyrka" would say so, and three rows of "<5" under a youth count
    # of "<5" would say each is exactly 1.
    youths = [youth("girl", "13-15"), youth("girl", "16-17"), youth("girl", "18-20")]
    cells = suppress(count("2026-04", youths, []), ["2026-04"], None, T, PROFILE)
    for dim, config in YOUTH_DIMS.items():
        values = {k[2] for k in cells if k[1] == dim}
        assert values == set(PROFILE[config]) | {"unsaid"}, dim
        assert {cells[("2026-04", dim, v)] for v in values} == {SMALL}
    assert {k[2] for k in cells if k[1] == "language"} == {"sv", "ar", "so", "unsaid"}
    assert {k[2] for k in cells if k[1] == "contact_kind"} == {"first", "returning"}
    # No Stockholm youth, but Stockholm shows "<5" like every municipality,
    # so its districts are listed too (else their absence would say 0).
    assert cells[("2026-04", "municipality", "Stockholm")] == SMALL
    assert {k[2] for k in cells if k[1] == "district"} == {"Bromma", "Farsta", "other", "unsaid"}
    # Professionals are absent (0): their dimensions have no rows.
    assert not any(k[1] in PRO_DIMS for k in cells)
    assert recoverable("2026-04", cells) == set()


def test_a_range_total_lists_what_a_quiet_month_listed_and_hides_it() -> None:
    months = ["2026-05", "2026-06"]
    total = "2026-05/2026-06"
    raw = count("2026-05", [youth("girl")], [])
    raw.update(count("2026-06", [youth("boy")] * 10 + [youth("girl")] * 10, []))
    for (_, d, v), n in list(raw.items()):
        raw[(total, d, v)] = raw.get((total, d, v), 0) + n
    cells = suppress(raw, months, total, T, PROFILE)
    # "nonbinary" is 0 in both months, "<5" in May: its total is listed, hidden.
    assert cells[("2026-05", "gender", "nonbinary")] == SMALL
    assert ("2026-06", "gender", "nonbinary") not in cells
    assert cells[(total, "gender", "nonbinary")] == ".."
    assert cells[(total, "gender", "boy")] == ".."
    assert recoverable(total, cells, in_total=True) == set()


# ---------------------------------------------------------- random months

GENDERS = st.sampled_from(PROFILE["genders"] + ["unsaid"])
YOUTHS = st.builds(youth, GENDERS, st.sampled_from(PROFILE["age_bands"] + ["unsaid"]),
                   st.sampled_from(PROFILE["municipalities"] + ["unsaid"]),
                   st.sampled_from(PROFILE["topics"] + ["unsaid"]),
                   st.sampled_from(PROFILE["languages"]), st.sampled_from(["first", "returning"]),
                   st.sampled_from(["Bromma", "Farsta", "other", "unsaid"]))
PROS = st.builds(pro, st.sampled_from(PROFILE["professions"] + ["unsaid"]),
                 st.sampled_from(PROFILE["municipalities"]), st.sampled_from(PROFILE["languages"]),
                 st.sampled_from(["first", "returning"]))


@settings(max_examples=100, deadline=None)
@given(st.lists(YOUTHS, max_size=40), st.lists(PROS, max_size=12))
def test_no_hidden_cell_of_a_random_month_can_be_recovered(
        youths: list[dict[str, str]], pros: list[dict[str, str]]) -> None:
    raw = count("2026-07", youths, pros)
    cells = suppress(raw, ["2026-07"], None, T, PROFILE)
    assert recoverable("2026-07", cells) == set()
    for k, shown in cells.items():  # what is shown is true
        assert shown == raw.get(k, 0) if isinstance(shown, int) else True
    if cells.get(("2026-07", "contacts", "youth")) == SMALL:
        for dim, config in YOUTH_DIMS.items():
            assert {k[2] for k in cells if k[1] == dim} >= set(PROFILE[config]), dim


def test_a_lone_small_cell_hides_nothing_in_the_linked_dimensions() -> None:
    # One contact left the queue: unmet demand is not part of any sum, and
    # its single "<5" has nothing beside it to hide.
    raw = count("2026-08", [youth()] * 7, [])
    raw[("2026-08", "unmet_left", "weekday_day")] = 1
    cells = suppress(raw, ["2026-08"], None, T, PROFILE)
    assert cells[("2026-08", "unmet_left", "weekday_day")] == SMALL
    assert [k for k, v in cells.items() if not isinstance(v, int)] == [
        ("2026-08", "unmet_left", "weekday_day")]
