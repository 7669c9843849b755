"""The dependency rule of docs/architecture.md, checked on the import graph."""

from __future__ import annotations

import ast
from pathlib import Path

from chatserver.settings import REPO_ROOT

PACKAGE = REPO_ROOT / "chatserver"
CRYPTO_ONLY = ("nacl", "argon2")
NO_IO_IN = ("domain", "queue")
IO_LIBRARIES = ("aiohttp", "socketio", "engineio", "redis", "aiosqlite", "sqlite3", "asyncpg")


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def top(name: str) -> str:
    return name.split(".")[0]


def test_only_crypto_imports_nacl_and_argon2() -> None:
    offenders = [
        (str(p.relative_to(REPO_ROOT)), name)
        for p in modules() if p.parent.name != "crypto"
        for name in imports(p) if top(name) in CRYPTO_ONLY
    ]
    assert offenders == []


def test_domain_and_queue_import_no_io_library() -> None:
    offenders = [
        (str(p.relative_to(REPO_ROOT)), name)
        for p in modules() if p.relative_to(PACKAGE).parts[0] in NO_IO_IN
        for name in imports(p) if top(name) in IO_LIBRARIES
    ]
    assert offenders == []


def test_domain_and_queue_do_not_import_transport() -> None:
    offenders = [
        (str(p.relative_to(REPO_ROOT)), name)
        for p in modules() if p.relative_to(PACKAGE).parts[0] in NO_IO_IN
        for name in imports(p) if name.startswith(("chatserver.transport", "chatserver.app"))
    ]
    assert offenders == []


def test_the_checker_sees_imports() -> None:
    # Guard against a checker that silently finds nothing.
    assert "nacl.bindings" in imports(PACKAGE / "crypto" / "e2e.py") or \
        "nacl" in {top(n) for n in imports(PACKAGE / "crypto" / "e2e.py")}
    assert "sortedcontainers" in imports(PACKAGE / "queue" / "model.py")
