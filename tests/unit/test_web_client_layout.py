"""The browser code's layout (docs/design/web-client.md, "Modules").

Each page's JavaScript is split into modules small enough to read in one
sitting, and they import one way: no module imports one that (through
others) imports it. What every chat page needs — the typing and delivered
timing, the composer's typing signals, the delivered receipts, the log's
items, the notice line — is defined once, in web_client/src/lib/, not copied
into each page where the copies drift apart.

Read from the source files; no build and no browser needed.
"""

from __future__ import annotations

import re
from pathlib import Path

from chatserver.settings import REPO_ROOT

SRC = REPO_ROOT / "web_client" / "src"
# The folders that hold one page's own code (lib/ is shared by all of them).
PAGE_DIRS = ("youth", "console", "liaison", "operator", "staff")
MAX_LINES = 400

# name -> its one home
SHARED_HOMES = {
    "TYPING_IDLE_MS": "lib/composer.js",
    "TYPING_REPEAT_MS": "lib/composer.js",
    "TYPING_SHOW_MS": "lib/composer.js",
    "DELIVERED_DEBOUNCE_MS": "lib/composer.js",
    "onComposerInput": "lib/composer.js",
    "stopTyping": "lib/composer.js",
    "scheduleDelivered": "lib/composer.js",
    "renderItem": "lib/messages.js",
    "setNotice": "lib/notice.js",
}

IMPORT = re.compile(r"""^\s*import\s+(?:[^'"]*?\s+from\s+)?["'](\.{1,2}/[^"']+)["']""", re.M)


def js_files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.js") if "node_modules" not in p.parts)


def rel(path: Path) -> str:
    return path.relative_to(SRC).as_posix()


def without_comments(source: str) -> str:
    """The code without its comments, as this code base writes them: a /* */
    block opens a line; a // comment fills a line or follows code after a
    space. (A "/*" inside a // comment, or a "//" inside a URL string, is
    not a comment opening.)"""
    source = re.sub(r"^[ \t]*/\*.*?\*/", "", source, flags=re.S | re.M)
    return re.sub(r"(^|\s)//.*$", r"\1", source, flags=re.M)


def definitions(name: str, source: str) -> int:
    """How often ``name`` is defined in ``source``: a function, a const / let /
    var, a method or an object property holding a function."""
    n = re.escape(name)
    patterns = (
        rf"\bfunction\s*\*?\s*{n}\s*\(",
        rf"\b(?:const|let|var)\s+{n}\b",
        rf"^\s*(?:async\s+)?{n}\s*\([^)]*\)\s*\{{",
        rf"\b{n}\s*:\s*(?:async\s+)?(?:function\b|\([^)]*\)\s*=>|\w+\s*=>)",
    )
    code = without_comments(source)
    return sum(len(re.findall(p, code, re.M)) for p in patterns)


def imports(path: Path) -> set[Path]:
    code = without_comments(path.read_text(encoding="utf-8"))
    return {(path.parent / target).resolve() for target in IMPORT.findall(code)}


def cycle(graph: dict[Path, set[Path]]) -> list[Path]:
    """One import cycle as a list of files, or [] when there is none."""
    state: dict[Path, int] = {}  # 1: on the current path, 2: done
    path: list[Path] = []

    def visit(node: Path) -> list[Path]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return []


def test_the_checker_sees_definitions_and_imports() -> None:
    # Guard against a checker that silently finds nothing.
    sample = (
        "export function stopTyping(cs) {}\n"
        "const setNotice = (t) => t; // setNotice(x) is a call, not a definition\n"
        "const LOOK = { renderItem: (item) => item, other: renderItem };\n"
        "class C {\n  onComposerInput(e) {\n    stopTyping(e);\n  }\n}\n"
        "/* function scheduleDelivered() {} */\n"
        "// see screens/*.js\n"
        'import { x } from "./state.js";\n'
        "/** one */\n"
    )
    assert [definitions(n, sample) for n in
            ("stopTyping", "setNotice", "renderItem", "onComposerInput", "scheduleDelivered")] \
        == [1, 1, 1, 1, 0]
    assert 'import { x } from "./state.js";' in without_comments(sample)
    main = SRC / "youth" / "main.js"
    assert SRC / "youth" / "exit.js" in imports(main)
    assert SRC / "lib" / "e2e.js" in imports(main)
    a, b, c = Path("/a.js"), Path("/b.js"), Path("/c.js")
    assert cycle({a: {b}, b: {c}, c: {a}}) == [a, b, c, a]
    assert cycle({a: {b, c}, b: {c}, c: set()}) == []


def test_each_shared_piece_is_defined_once_in_lib() -> None:
    found: dict[str, list[str]] = {name: [] for name in SHARED_HOMES}
    for path in js_files():
        source = path.read_text(encoding="utf-8")
        for name in SHARED_HOMES:
            found[name] += [rel(path)] * definitions(name, source)
    wrong = {name: files for name, files in found.items() if files != [SHARED_HOMES[name]]}
    assert wrong == {}, f"defined elsewhere than its one home (or more than once): {wrong}"


def test_each_page_is_split_into_small_modules_that_import_one_way() -> None:
    too_long = {
        rel(p): n for p in js_files()
        if p.relative_to(SRC).parts[0] in PAGE_DIRS
        and (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert too_long == {}, f"page modules over {MAX_LINES} lines: split them by screen or part"
    graph = {p.resolve(): imports(p) for p in js_files()}
    missing = sorted(f"{rel(p)} -> {t}" for p, targets in graph.items() for t in targets
                     if not t.is_file())
    assert missing == []
    assert [rel(p) for p in cycle(graph)] == [], \
        "an import cycle: a lower module must not import a higher one"
