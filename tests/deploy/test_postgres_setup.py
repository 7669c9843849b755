"""deploy/postgres/setup.sql against the local PostgreSQL service: the owner
role migrates, the runtime role runs chatserver and can change rows but not
the schema or the audit log's guards, and a backup made with pg_dump comes
back with pg_restore into a database the same script made
(docs/operations.md, "PostgreSQL" and "Backups")."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from chatserver.storage.schema import migrations
from tests.helpers.deploy import DEPLOY, require_tool
from tests.helpers.postgres import ADMIN_URL, require_server
from tests.integration.test_cli import run

PW = "correct horse battery staple"
SETUP = DEPLOY / "postgres" / "setup.sql"


def _url(role: str, db: str) -> str:
    parts = urlsplit(ADMIN_URL)
    return f"postgresql://{role}@{parts.hostname}:{parts.port or 5432}/{db}"


def _psql(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    psql = require_tool("psql", "apt-get install postgresql-client")
    return subprocess.run([psql, url, "-X", "-q", "-v", "ON_ERROR_STOP=1", *args],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
async def names() -> AsyncIterator[dict[str, str]]:
    """Role and database names of this test's own; dropped afterwards."""
    await require_server()
    tag = secrets.token_hex(4)
    made = {"owner": f"chat_owner_{tag}", "app": f"chat_app_{tag}", "db": f"chat_db_{tag}"}
    yield made
    dropped = _psql(ADMIN_URL,
                    "-c", f'DROP DATABASE IF EXISTS "{made["db"]}" WITH (FORCE)',
                    "-c", f'DROP DATABASE IF EXISTS "{made["db"]}_old" WITH (FORCE)',
                    "-c", f'DROP ROLE IF EXISTS "{made["app"]}"',
                    "-c", f'DROP ROLE IF EXISTS "{made["owner"]}"')
    assert dropped.returncode == 0, dropped.stderr


def _setup(names: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return _psql(ADMIN_URL, *(f"--variable={k}={v}" for k, v in names.items()),
                 "-f", str(SETUP))


def test_owner_migrates_app_runs_and_a_dump_restores(names: dict[str, str],
                                                      tmp_path: Path) -> None:
    made = _setup(names)
    assert made.returncode == 0, made.stderr
    owner, app = _url(names["owner"], names["db"]), _url(names["app"], names["db"])
    data_dir = tmp_path / "data"

    # The runtime role cannot create the schema: a node never migrates.
    refused = run(data_dir, "store", "migrate", CHAT_DATABASE_URL=app)
    assert refused.returncode != 0
    assert "permission denied" in refused.stdout + refused.stderr
    migrated = run(data_dir, "store", "migrate", CHAT_DATABASE_URL=owner)
    assert migrated.returncode == 0, migrated.stderr
    last = migrations("postgresql")[-1][0]
    assert migrated.stdout.startswith(f"postgresql: schema at version {last}")

    # Once migrated, everything a node and an operator do works as the app role.
    again = run(data_dir, "store", "migrate", CHAT_DATABASE_URL=app)
    assert again.returncode == 0, again.stderr
    added = run(data_dir, "staff", "add", "anna", "--role", "counsellor", "--alias", "Sara",
                "--password-stdin", stdin=PW + "\n", CHAT_DATABASE_URL=app)
    assert added.returncode == 0, added.stderr
    assert run(data_dir, "staff", "disable", "anna", CHAT_DATABASE_URL=app).returncode == 0
    head = run(data_dir, "audit", "verify", "--print-head", CHAT_DATABASE_URL=app)
    assert head.returncode == 0, head.stderr

    # ... and nothing that changes the schema or gets round the audit guards.
    for statement in ("DROP TABLE audit", "ALTER TABLE audit DISABLE TRIGGER ALL",
                      "TRUNCATE audit", "UPDATE audit SET actor = 'x'",
                      "CREATE TABLE planted (i int)", "ALTER TABLE staff ADD COLUMN x int",
                      "SET log_statement = 'all'"):
        tried = _psql(app, "-c", statement)
        assert tried.returncode != 0, statement
        assert "permission denied" in tried.stderr or "must be owner" in tried.stderr \
            or "append-only" in tried.stderr, tried.stderr

    # Backup as the owner; restore = the broken database set aside, setup.sql
    # again (the roles exist, the database is new), pg_restore into it.
    pg_dump = require_tool("pg_dump", "apt-get install postgresql-client")
    pg_restore = require_tool("pg_restore", "apt-get install postgresql-client")
    dump = tmp_path / "chat.dump"
    with dump.open("wb") as out:
        subprocess.run([pg_dump, "--format=custom", owner], stdout=out, check=True, timeout=120)
    moved = _psql(ADMIN_URL, "-c",
                  f'ALTER DATABASE "{names["db"]}" RENAME TO "{names["db"]}_old"')
    assert moved.returncode == 0, moved.stderr
    remade = _setup(names)
    assert remade.returncode == 0, remade.stderr
    restored = subprocess.run(
        [pg_restore, "--exit-on-error", "--single-transaction",
         "--dbname", _url(urlsplit(ADMIN_URL).username or "postgres", names["db"]), str(dump)],
        capture_output=True, text=True, timeout=120, check=False)
    assert restored.returncode == 0, restored.stderr
    verified = run(data_dir, "audit", "verify", "--print-head", CHAT_DATABASE_URL=app)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.strip().splitlines()[-1] == head.stdout.strip().splitlines()[-1]
    listed = run(data_dir, "staff", "list", CHAT_DATABASE_URL=app)
    assert "anna" in listed.stdout and "yes" in listed.stdout
    # The restored tables are the owner's again, so the guards hold there too.
    assert _psql(app, "-c", "DROP TABLE audit").returncode != 0
    assert run(data_dir, "staff", "enable", "anna", CHAT_DATABASE_URL=app).returncode == 0
