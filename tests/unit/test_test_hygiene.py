"""One home for each shared test helper and fixture.

Copies of a helper drift apart (one polls a deadline, another a count of
sleeps; one spy keeps the recipient, another drops it), and a fix reaches
only one of them. Plain helpers live in tests/helpers/, fixtures in the
conftest.py of the directory that needs them; this checks, on the syntax
tree of every file under tests/, that each is defined exactly there and
nowhere else, under its own name or a private variant of it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from chatserver.settings import REPO_ROOT

TESTS = REPO_ROOT / "tests"

# helper name -> its one home; a leading underscore is the same helper
HELPER_HOMES = {
    "eventually": "tests/helpers/waiting.py",
    "spy_emits": "tests/helpers/emits.py",
    "spy_sent": None,  # the old name of spy_emits: no home any more
    "wait_ready": "tests/helpers/server_process.py",
    "raw_youth": "tests/helpers/raw_socket.py",
    "free_port": "tests/conftest.py",
    "fresh_database": "tests/helpers/postgres.py",
}
FIXTURE_HOMES = {
    "settings": "tests/conftest.py",
    "live_server": "tests/conftest.py",
    "make_server": "tests/conftest.py",
    "store": "tests/unit/conftest.py",
    "db_path": "tests/unit/conftest.py",
    "clock": "tests/unit/conftest.py",
    "backend": "tests/unit/conftest.py",
    "any_store": "tests/unit/conftest.py",
}


def _is_fixture(decorator: ast.expr) -> tuple[bool, str | None]:
    """Whether ``decorator`` is ``@pytest.fixture`` / ``@pytest_asyncio.fixture``
    (called or not), and the ``name=`` it gives the fixture, if any."""
    call = decorator if isinstance(decorator, ast.Call) else None
    target = call.func if call else decorator
    if not (isinstance(target, ast.Attribute) and target.attr == "fixture"):
        return False, None
    for kw in call.keywords if call else []:
        if kw.arg == "name" and isinstance(kw.value, ast.Constant):
            return True, str(kw.value.value)
    return True, None


def definitions(files: Iterable[tuple[str, str]]) -> tuple[dict[str, list[str]],
                                                           dict[str, list[str]]]:
    """For (path, source) pairs: where each guarded helper and each guarded
    fixture is defined, as ``path:line``, at any depth (a copy nested in a
    test is still a copy)."""
    helpers: dict[str, list[str]] = {}
    fixtures: dict[str, list[str]] = {}
    for path, source in files:
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            where = f"{path}:{node.lineno}"
            marks = [_is_fixture(d) for d in node.decorator_list]
            if any(is_fixture for is_fixture, _ in marks):
                name = next((n for _, n in marks if n), node.name)
                if name in FIXTURE_HOMES:
                    fixtures.setdefault(name, []).append(where)
                continue
            name = node.name.lstrip("_")
            if name in HELPER_HOMES:
                helpers.setdefault(name, []).append(where)
    return helpers, fixtures


def _test_files() -> list[tuple[str, str]]:
    return [(str(p.relative_to(REPO_ROOT)), p.read_text(encoding="utf-8"))
            for p in sorted(TESTS.rglob("*.py"))]


def _homes(found: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: sorted(w.rsplit(":", 1)[0] for w in where) for name, where in found.items()}


def test_each_shared_helper_is_defined_once_in_its_home() -> None:
    helpers, _ = definitions(_test_files())
    expected = {name: [home] for name, home in HELPER_HOMES.items() if home}
    assert _homes(helpers) == expected, helpers


def test_each_shared_fixture_is_defined_once_in_its_conftest() -> None:
    _, fixtures = definitions(_test_files())
    expected = {name: [home] for name, home in FIXTURE_HOMES.items()}
    assert _homes(fixtures) == expected, fixtures


def test_the_guard_finds_copies_under_any_spelling() -> None:
    # Guard against a checker that silently finds nothing.
    copy = '''
import pytest, pytest_asyncio

async def _eventually(check, secs=5.0): ...

def _spy_emits(server): ...

def spy_sent(server): ...

@pytest.fixture
async def store(db_path): ...

@pytest_asyncio.fixture(scope="module", loop_scope="module")
def clock(): ...

@pytest.fixture(name="db_path")
def my_db_path(tmp_path): ...

def test_something():
    async def eventually(check): ...

@pytest.fixture
def eventually(): ...  # a fixture, not the helper
'''
    helpers, fixtures = definitions([("a.py", copy), ("b.py", "def free_port(): ...")])
    assert helpers == {"eventually": ["a.py:4", "a.py:20"], "spy_emits": ["a.py:6"],
                       "spy_sent": ["a.py:8"], "free_port": ["b.py:1"]}
    assert fixtures == {"store": ["a.py:11"], "clock": ["a.py:14"], "db_path": ["a.py:17"]}


def test_the_homes_exist() -> None:
    for home in {*HELPER_HOMES.values(), *FIXTURE_HOMES.values()} - {None}:
        assert isinstance(home, str) and (REPO_ROOT / home).is_file(), home
    assert list(TESTS.rglob("utils.py")) == []  # modules are named for what they hold
