"""A fresh PostgreSQL database per test, on the server the tests are pointed at.

``CHAT_TEST_POSTGRES_URL`` names a role that may create databases (default:
the local service, ``postgresql://postgres@127.0.0.1:5432/postgres``). Each
database gets a random name and is dropped afterwards. If the server cannot
be reached the test is skipped on a developer's machine and FAILS under
``CI=true``: nothing may skip there (scripts/setup.sh starts the service).

``private_cluster`` starts a cluster of the test's own with initdb, for a
test that must read every file PostgreSQL writes.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

ADMIN_URL = os.environ.get("CHAT_TEST_POSTGRES_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"
CONNECT_TIMEOUT_SECS = 10.0


async def _admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(ADMIN_URL, timeout=CONNECT_TIMEOUT_SECS)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        message = (f"PostgreSQL is not reachable at {ADMIN_URL} ({exc!r}): start it "
                   "(pg_ctlcluster --skip-systemctl-redirect 15 main start) or set "
                   "CHAT_TEST_POSTGRES_URL")
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


async def require_server() -> None:
    """Skip (fail under CI=true) unless the server at ADMIN_URL answers."""
    await (await _admin()).close()


def database_url(name: str) -> str:
    """The URL of database ``name`` on the admin URL's server, as its user."""
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """Create an empty database, yield its URL, drop it (its connections too)."""
    name = "chat_test_" + secrets.token_hex(6)
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await admin.close()
    try:
        yield database_url(name)
    finally:
        admin = await _admin()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


PG_BIN = Path(os.environ.get("CHAT_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_owner(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: as root, run them as the
    # postgres system user, which owns the cluster's directory.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass(frozen=True)
class Cluster:
    root: Path  # everything the cluster wrote: data dir (WAL included), log, socket
    data: Path
    log: Path
    url: str  # the "chat" database, over the Unix socket in ``root``


@contextmanager
def private_cluster(port: int, **settings: str) -> Iterator[Cluster]:
    """A PostgreSQL cluster of its own (initdb), listening only on a Unix
    socket in its directory, with ``settings`` as ``-c`` options; a database
    ``chat``. Stopped and removed afterwards. Fails (under CI=true) or skips
    if the binaries are missing."""
    if not (PG_BIN / "initdb").is_file():
        message = f"PostgreSQL binaries not found in {PG_BIN} (set CHAT_TEST_PG_BIN)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="chat-pg-"))
    data, log = root / "data", root / "postgres.log"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    options = [f"-p {port}", "-c listen_addresses=''", f"-c unix_socket_directories={root}",
               *(f"-c {k}={v}" for k, v in settings.items())]
    run = functools.partial(subprocess.run, check=True, capture_output=True, timeout=120)
    try:
        run(_as_owner([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                       "--auth=trust", "-E", "UTF8", "--no-instructions"]))
        run(_as_owner([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
                       "-o", " ".join(options), "start"]))
        try:
            run(_as_owner([str(PG_BIN / "createdb"), "-h", str(root), "-p", str(port),
                           "-U", "postgres", "chat"]))
            yield Cluster(root, data, log,
                          f"postgresql://postgres@/chat?host={root}&port={port}")
        finally:
            stop_cluster(data)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def stop_cluster(data: Path) -> None:
    """A clean, fast stop (every WAL record is on disk afterwards); a no-op
    if it is not running. Call it before reading the cluster's files."""
    if (data / "postmaster.pid").exists():
        subprocess.run(_as_owner([str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-m", "fast",
                                  "stop"]), check=True, capture_output=True, timeout=120)
