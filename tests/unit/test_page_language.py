"""Which language variant of the youth page a browser gets
(chatserver/transport/page_language.py)."""

from __future__ import annotations

import pytest

from chatserver.transport.page_language import choose, parse

HAVE = frozenset({"sv", "en", "ar", "fa", "prs", "so", "ckb", "ti"})


@pytest.mark.parametrize(("header", "expected"), [
    (None, "sv"),
    ("", "sv"),
    ("sv-SE", "sv"),
    ("en-US,en;q=0.9", "en"),
    ("de-DE, fr;q=0.8", "sv"),  # nothing we have: the default
    ("de, en;q=0.5", "en"),  # the first we have, not the first asked for
    ("en;q=0.4, ar;q=0.9", "ar"),  # q-values, not order, rank
    ("en;q=0.5, sv;q=0.5", "en"),  # a tie keeps the browser's order
    ("ar;q=0, en;q=0.1", "en"),  # q=0: "not this one"
    ("fa-AF", "prs"),  # Dari, as most browsers in Afghanistan name it
    ("fa-IR, fa;q=0.9", "fa"),
    ("CKB", "ckb"),  # case does not matter
    ("*", "sv"),
    ("ti;q=0.7, *;q=0.8", "sv"),  # "*" ranked first: anything, so the default
    ("en;q=2", "sv"),  # a malformed q-value is left out, not read as 1
    ("en;q=abc, ar", "ar"),
    ("<script>, en", "en"),  # not a language tag
    ("x" * 5000, "sv"),
])
def test_choose(header: str | None, expected: str) -> None:
    assert choose(header, HAVE, "sv") == expected


def test_parse_orders_by_q_then_position_and_is_bounded() -> None:
    assert parse("a;q=0.5, b, c;q=0.5, d;q=1.0") == ["b", "d", "a", "c"]
    many = ",".join(f"l{i}" for i in range(1000))
    assert len(parse(many)) <= 32
    assert parse(f"{'en,' * 400}ar") == ["en"] * 32
