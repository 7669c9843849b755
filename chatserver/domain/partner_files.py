"""The whole directory as a file, for the annual check with the
municipalities: TOML (the format of ``config/partners.toml``) and CSV (for a
spreadsheet). ``export`` writes every entry, retired ones too; ``parse``
reads a file back into checked entries, all or nothing (docs/operations.md,
"The partner directory").
"""

from __future__ import annotations

import csv
import io
import json
import tomllib
from collections.abc import Iterable
from typing import Any

from chatserver.domain.referrals import Partner, checked_entries, entries_from_toml
from chatserver.domain.spreadsheet import FORMULA_START, text_cell
from chatserver.settings import ConfigError

FORMATS = ("toml", "csv")
CSV_COLUMNS = ("code", "name", "name_en", "kind", "municipality", "districts", "phone", "url",
               "hours_sv", "hours_en", "notes", "words_sv", "words_en", "retired",
               "verified_by", "verified_at")
# Lists in one CSV cell: items joined by "; " (no item may hold a ';').
CSV_LIST = "; "
# A spreadsheet runs a cell that starts like a formula ("+46 8 …" included):
# such a cell is written with a leading apostrophe (domain/spreadsheet.py),
# which spreadsheets show as text, and the apostrophe is removed on import.
_TOML_HEADER = """\
# The referral partner directory, exported from the running server.
# Format: docs/operations.md, "The partner directory". Import it again with
# `chatserver partners import FILE` (all entries are checked before any change).
"""


def export(partners: Iterable[Partner], fmt: str) -> str:
    if fmt == "toml":
        return to_toml(partners)
    if fmt == "csv":
        return to_csv(partners)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string (same escapes).
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(type(value).__name__)


def to_toml(partners: Iterable[Partner]) -> str:
    out = [_TOML_HEADER]
    for p in partners:
        out.append("\n[[partner]]\n")
        out.extend(f"{name} = {_toml_value(value)}\n" for name, value in p.entry().items())
    return "".join(out)


def _cell(value: str) -> str:
    return text_cell(value)


def to_csv(partners: Iterable[Partner]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for p in partners:
        e = p.entry()
        row = {
            **{k: e[k] for k in ("code", "name", "name_en", "kind", "municipality", "phone",
                                 "url", "notes", "verified_by", "verified_at")},
            "districts": CSV_LIST.join(p.districts),
            "hours_sv": p.hours["sv"], "hours_en": p.hours["en"],
            "words_sv": CSV_LIST.join(p.words_sv), "words_en": CSV_LIST.join(p.words_en),
            "retired": "yes" if p.retired else "no",
        }
        writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
    return buf.getvalue()


def parse(text: str, fmt: str, source: str) -> list[Partner]:
    """Every entry of a TOML or CSV directory, checked; ``ConfigError`` naming
    the first bad entry and field, so that nothing is imported."""
    if fmt == "toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source} is not valid TOML: {exc}") from None
        return entries_from_toml(data, source)
    if fmt == "csv":
        return checked_entries(_csv_entries(text, source), source)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}")


def _uncell(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(";") if item.strip()]


def _csv_entries(text: str, source: str) -> list[Any]:
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    if not rows or tuple(rows[0]) != CSV_COLUMNS:
        raise ConfigError(f"{source}: the first row must name the columns "
                          f"{','.join(CSV_COLUMNS)}")
    entries: list[Any] = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(CSV_COLUMNS):
            raise ConfigError(f"{source}: row {number} has {len(row)} cells, "
                              f"not {len(CSV_COLUMNS)}")
        cell = {c: _uncell(v) for c, v in zip(CSV_COLUMNS, row, strict=True)}
        retired = cell["retired"].strip().lower()
        if retired not in ("yes", "no", ""):
            raise ConfigError(f"{source}: row {number}: field 'retired' must be yes or no")
        entries.append({
            **{k: cell[k] for k in ("code", "name", "name_en", "kind", "municipality", "phone",
                                    "url", "notes", "verified_by", "verified_at")},
            "districts": _split(cell["districts"]),
            "hours": {"sv": cell["hours_sv"], "en": cell["hours_en"]},
            "words": {"sv": _split(cell["words_sv"]), "en": _split(cell["words_en"])},
            "retired": retired == "yes",
        })
    if not entries:
        raise ConfigError(f"{source}: no entries")
    return entries
