"""The repository stands on its own.

A reader with nothing but a clone must find everything here: no document may
send them to a file outside the repository, to the planning documents the
project was started from, or to a tracker; and no text may say *when* (or in
which round of work) something was done instead of *what* it requires.
Requirements are cited by what they require (docs/promises.md,
docs/mission.md, docs/security-design.md, docs/style.md hold them).

The rules look for the shapes such references take, not for words: "issue" as
a verb (issue a passphrase), "session" as a staff login or socket.io session,
a partner-table number such as ``#2`` in a config error, and run names such as
``s5-full`` (names of result folders) all stay allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

# The tree this file sits in (not the installed package's), so that the check
# can be pointed at another checkout by copying this file into it.
ROOT = Path(__file__).resolve().parents[2]
THIS = Path(__file__).resolve()

SCANNED = ("README.md", "Makefile", "pyproject.toml", "docs", "chatserver", "tests",
           "web_client/src", "web_client/build.mjs", "web_client/package.json",
           "loadtests", "config", "scripts")
SKIPPED_DIRS = {"node_modules", "results", "__pycache__", "dist", ".mypy_cache",
                ".ruff_cache", ".pytest_cache", ".hypothesis"}
TEXT_SUFFIXES = {".md", ".py", ".js", ".mjs", ".css", ".html", ".toml", ".sql", ".sh",
                 ".json", ".txt", ""}
# Data files with no prose in them (vectors, lock files).
SKIPPED_FILES = {"tests/data/e2e_vectors.json", "web_client/package-lock.json",
                 "loadtests/package-lock.json"}

ORDINALS = ("first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|"
            "this|last|previous|next|earlier")

# name -> (pattern, why it is refused)
RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "planning document": (
        re.compile(r"\b(?:SECURITY_DESIGN|DESIGN|STYLE|MISSION_CONTEXT)(?:\.md)?\b(?![-_\w])"),
        "a planning document outside the repository; cite the requirement or docs/…"),
    "the brief": (
        re.compile(r"\b(?:the|this|our|project's|centre's)\s+brief\b", re.IGNORECASE),
        "the brief is not part of the repository; say what it requires"),
    "tracker number": (
        re.compile(r"\b(?:issue|ticket|bug|PR|pull request)\s*#?\d+\b", re.IGNORECASE),
        "a tracker number; say what is required"),
    # "#3" in prose; not a colour ("#333;", stroke="#888"), never in CSS files.
    "bare number": (
        re.compile(r"(?:^|[\s(\[])#\d+\b(?![;'\"])"),
        "a tracker number; say what is required"),
    "tracker item": (
        re.compile(r"\b(?:later|core(?: server)?|continuity(?: and escalation)?|load-test|"
                   r"this|that|the|an?|same|next|previous|future)\s+issue(?:'s)?\b"
                   r"(?!\s+(?:a|an|the|one|it|codes?|passphrases?|at|and)\b)", re.IGNORECASE),
        "a tracker item; say what is required, or what is not built yet"),
    "the tracker": (
        re.compile(r"\b(?:the|our|issue|bug)\s+tracker\b|`issues`|\bsee issues\b", re.IGNORECASE),
        "the tracker is not part of the repository"),
    "numbered round of work": (
        re.compile(rf"\b(?:{ORDINALS})[\s-]+(?:load-test\s+|work\s+)?session\b", re.IGNORECASE),
        "when work was done; say what holds now (a run's name may name its results)"),
}


def scanned_files() -> Iterator[Path]:
    for entry in SCANNED:
        path = ROOT / entry
        if path.is_file():
            yield path
        elif path.is_dir():
            for p in sorted(path.rglob("*")):
                if not p.is_file() or SKIPPED_DIRS & set(p.relative_to(ROOT).parts):
                    continue
                rel = p.relative_to(ROOT).as_posix()
                if p.suffix in TEXT_SUFFIXES and rel not in SKIPPED_FILES:
                    yield p


# A relative path that climbs: ``../x`` in a link, an import or prose.
UP_PATH = re.compile(r"(?<![\w.])((?:\.\./)+[\w.\-/]*[\w\-])")


def violations(path: Path) -> Iterator[str]:
    rel = path.relative_to(ROOT).as_posix()
    text = path.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        for name, (pattern, why) in RULES.items():
            if name == "bare number" and path.suffix == ".css":
                continue  # colours
            m = pattern.search(line)
            if m:
                yield f"{rel}:{number}: {name} {m.group(0).strip()!r}: {why}"
        for m in UP_PATH.finditer(line):
            target = (path.parent / m.group(1)).resolve()
            if not target.is_relative_to(ROOT) or not target.exists():
                yield (f"{rel}:{number}: path {m.group(1)!r} leads outside the repository "
                       "or nowhere")


def test_the_scan_sees_the_tree() -> None:
    files = {p.relative_to(ROOT).as_posix() for p in scanned_files()}
    assert {"README.md", "docs/architecture.md", "chatserver/app.py", "Makefile",
            "web_client/src/youth/exit.js", "loadtests/report.py"} <= files
    assert THIS.relative_to(ROOT).as_posix() in files


def test_nothing_cites_outside_the_repository_a_tracker_or_when_work_was_done() -> None:
    found = [v for p in scanned_files() if p != THIS for v in violations(p)]
    assert found == [], "\n".join(found)


@pytest.mark.parametrize(("text", "refused"), [
    ("Read ../shared/DESIGN.md for the promises.", True),
    ("the headers in SECURITY_DESIGN.md (\"Headers\")", True),
    ("so 12 (the brief for this project).", True),
    ("Found by the load tests (issue 5); figures in docs/performance.md", True),
    ("Continuity and escalation in real Chromium (issue 4): a returning youth", True),
    ("personal lanes, a later issue", True),
    ("room left for the continuity issue.", True),
    ("See `issues` for what is built", True),
    ("**Status:** accepted (fourth session, 'Revision: the packet queue')", True),
    ("performance.md: fifth-session figures", True),
    ("see #3 for the plan", True),
    # Allowed: ordinary words in their ordinary sense.
    ("issue at the end of a conversation, redeem once on return", False),
    ("The conversation also issues and redeems a return passphrase", False),
    ("(`socket.io session`) a staff session cookie; the session expired", False),
    ("raise ConfigError(f\"#2 'soc-malmo' duplicates #1\")", False),
    ("color: #333; stroke=\"#888\"", False),
    ("results of the run `s5-full` (loadtests/results/s5-full)", False),
    ("See docs/design/queue.md and ../decisions/0002-gc-and-handler-policy.md", False),
    ("DESIGN_NOTES = 1; designer.md", False),
])
def test_the_rules_are_precise(text: str, refused: bool) -> None:
    hits = [name for name, (pattern, _) in RULES.items() if pattern.search(text)]
    assert bool(hits) == refused, hits


def test_climbing_paths_must_stay_inside_and_exist() -> None:
    inside = ROOT / "docs" / "design" / "queue.md"
    assert list(UP_PATH.findall("see ../decisions/0001-embedded-first.md")) == \
        ["../decisions/0001-embedded-first.md"]
    assert (inside.parent / "../decisions/0001-embedded-first.md").resolve().exists()
    outside = (ROOT / "README.md").parent / "../shared"
    assert not outside.resolve().is_relative_to(ROOT)
