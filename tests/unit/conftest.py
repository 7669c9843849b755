"""Fixtures for the unit tests: one real SQLite file per test and a fake clock.

The file sits in a directory of its own that does not exist yet, so a test
can also see what ``SqliteStore.open`` creates (modes, no stray files)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatserver.domain.clock import FakeClock
from chatserver.storage.sqlite import SqliteStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "chat.sqlite3"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore.open(db_path) as s:
        yield s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
