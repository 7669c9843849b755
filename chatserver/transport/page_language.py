"""Which language variant of a page to serve: the browser's Accept-Language
against the languages the build wrote the page in (dist/manifest.json,
``page_variants``). The youth page carries its first screen in the HTML, in
one language, because on a slow phone the script arrives seconds later
(docs/design/web-client.md, "The first screen in the HTML").

Nothing is stored and no cookie is set: the choice is made again on every
request from the header alone, and the page's own language switch works in
memory after that.
"""

from __future__ import annotations

import re

# A header longer than this is cut: the choice stays cheap whatever is sent.
MAX_HEADER_CHARS = 1024
MAX_ENTRIES = 32
LANGUAGE_RANGE = re.compile(r"\*|[a-z]{1,8}(?:-[a-z0-9]{1,8})*")
QVALUE = re.compile(r"q=(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)")
# Tags browsers send for a language we hold under another code: Dari is
# "prs", but most browsers in Afghanistan say fa-AF.
ALIASES = {"fa-af": "prs"}


def parse(header: str) -> list[str]:
    """The language ranges of an Accept-Language header, most wanted first
    (by q-value, then by order); ranges with q=0 or a malformed q are left out."""
    ranked: list[tuple[float, int, str]] = []
    for position, entry in enumerate(header[:MAX_HEADER_CHARS].split(",")[:MAX_ENTRIES]):
        tag, _, params = entry.strip().lower().partition(";")
        tag = tag.strip()
        if not LANGUAGE_RANGE.fullmatch(tag):
            continue
        q = 1.0
        if params:
            found = QVALUE.fullmatch(params.strip().replace(" ", ""))
            if found is None:
                continue
            q = float(found.group(1))
        if q > 0:
            ranked.append((-q, position, tag))
    return [tag for _, _, tag in sorted(ranked)]


def choose(header: str | None, available: set[str] | frozenset[str], default: str) -> str:
    """The first wanted language we have: the exact tag (or its alias), else
    its primary subtag (sv-FI -> sv); "*" or nothing we have -> default."""
    for tag in parse(header or ""):
        if tag == "*":
            return default
        for candidate in (tag, ALIASES.get(tag, ""), tag.split("-", 1)[0]):
            if candidate in available:
                return candidate
    return default
