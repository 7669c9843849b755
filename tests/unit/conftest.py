"""Fixtures for the unit tests: one real SQLite file per test and a fake clock.

The file sits in a directory of its own that does not exist yet, so a test
can also see what ``SqliteStore.open`` creates (modes, no stray files).

``backend`` is the store contract's fixture: parametrized over ``sqlite``
and ``postgresql`` (a fresh database per test, tests/helpers/postgres.py).
Its ``open()`` opens one more store on the same database, as another
process or another node would.

``make_chat`` is the live state's: the domain tests get a ChatService in
memory, and the same interface through a real Redis log with two replicas
(tests/helpers/replicated_chat.py) — one contract, the same assertions."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from chatserver.domain.clock import Clock, FakeClock
from chatserver.domain.conversations import ChatService, StatsSink
from chatserver.settings import Settings
from chatserver.storage.postgres import PostgresStore
from chatserver.storage.sqlite import SqliteStore
from tests.helpers.postgres import fresh_database
from tests.helpers.redis_server import redis_server
from tests.helpers.replicated_chat import ReplicatedChat


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


@dataclass(frozen=True)
class Backend:
    name: str
    open: Callable[[], Any]  # a new store on the same database: await it or ``async with``
    # What the database raises when a CHECK constraint refuses a row.
    check_violation: type[BaseException]


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", lambda: SqliteStore.open(db_path), sqlite3.IntegrityError)
        return
    async with fresh_database() as url:
        yield Backend("postgresql", lambda: PostgresStore.open(url),
                      asyncpg.CheckViolationError)


@pytest.fixture
async def any_store(backend: Backend) -> AsyncIterator[Any]:
    async with backend.open() as s:
        yield s


@pytest.fixture(params=["memory", "redis"])
def make_chat(request: pytest.FixtureRequest, settings: Settings
              ) -> Iterator[Callable[..., Any]]:
    """``make_chat(clock, stats=None, settings=None)``: a ChatService, or its
    replicated twin (``settings`` defaults to the fixture's)."""
    if request.param == "memory":
        yield lambda clock, stats=None, settings_=None: ChatService(
            settings_ or settings, clock, stats=stats)
        return
    made: list[ReplicatedChat] = []
    servers = contextlib.ExitStack()

    def make(clock: Clock, stats: StatsSink | None = None,
             settings_: Settings | None = None) -> ReplicatedChat:
        # A redis-server of its own for every replicated service: a new
        # deployment's log, and nothing a previous test's nodes still write.
        server = servers.enter_context(redis_server())
        chat = ReplicatedChat(settings_ or settings, clock, stats, server.url, server.password)
        made.append(chat)
        return chat
    with servers:
        yield make
        for chat in made:
            chat.close()
