"""CSV cells a spreadsheet opens as text, never as a formula.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-``, ``@`` (or a
tab or carriage return before one) as a formula, so a value such as a partner
code ``-2-3`` or ``=HYPERLINK(…)`` in an exported file would be computed, or
worse, when an operator opens it. Every CSV the server writes passes its text
cells through ``text_cell``: such a cell gets a leading apostrophe, which
spreadsheets show as text (OWASP, "CSV Injection").
"""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: str) -> str:
    """``value`` as a CSV cell a spreadsheet shows as it is."""
    return f"'{value}" if value.startswith(FORMULA_START) else value
