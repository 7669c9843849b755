"""How the load reports write a figure: thousands separated, a dash for
none."""

from __future__ import annotations

from typing import Any


def fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)
