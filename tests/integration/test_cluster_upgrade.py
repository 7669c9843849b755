"""An upgrade whose release brings a new migration, run on three nodes the
way docs/operations.md ("Upgrading") tells an operator to, while
conversations keep sending: nothing is lost, duplicated or reordered, and
the database ends at the newest schema with an audit log that verifies.

The database is made as in production (deploy/postgres/setup.sql): an owner
role that alone may change the schema, and a runtime role the nodes log in
as, which cannot, so no node migrates by itself and ``chatserver store
migrate`` (as the owner) really is what applies the new migration.

The tree holds only one release. So "a database of the previous release"
is made by hand while the three nodes run: the newest migration is undone
(what it created dropped, what it replaced put back, its row in
``schema_migrations`` deleted), and the test first checks that the result
has exactly the tables, triggers and functions of a database migrated to
the version before. The three running nodes then stand for nodes of the
previous release, serving on that database and, after the migration, on the
new schema until each is restarted; the restarted nodes stand for the new
release. What this cannot cover: two different releases of the code running
side by side (each release's migrations only add, docs/operations.md,
"Upgrading", which is what lets an older node work on the newer schema;
nothing here runs older code against it).

The drill, with three conversations sending both ways the whole time:
1. the owner migrates; the three nodes start as the runtime role;
2. the newest migration is undone (the database of the previous release);
3. ``chatserver store migrate`` as the owner, a subprocess, as an operator
   runs it, while the three nodes serve (docs/operations.md prescribes it
   before the first node of the new version starts: as the runtime role, a
   node of the new version cannot start on the old schema);
4. each node restarted in turn (SIGINT, start, /readyz);
5. the books: 0 lost, 0 duplicated, 0 out of order, every conversation
   whole; the schema at the newest version; ``chatserver audit verify``
   passes; no node log holds a traceback.
A staff login on a node between the steps puts audit entries from each
phase into the chain that ``audit verify`` walks.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from chatserver.settings import REPO_ROOT
from chatserver.storage import postgres
from chatserver.storage.postgres import PostgresStore
from chatserver.storage.schema import migrations
from tests.helpers.cluster import cluster
from tests.helpers.conversation_load import close_talks, finish, more_sent, start_talks
from tests.helpers.deploy import DEPLOY, require_tool
from tests.helpers.postgres import ADMIN_URL, database_url, fresh_database, require_server
from tests.helpers.redis_server import RedisServer
from tests.helpers.server_process import CHATSERVER

pytestmark = [pytest.mark.redis, pytest.mark.slow]

MIGRATIONS = migrations("postgresql")
NEWEST = MIGRATIONS[-1][0]
# What undoes the newest migration (0007_audit_retention.postgres.sql): its
# table (with its triggers), its two functions, and audit_no_delete back on
# the function it had before; then its version is no longer recorded. In one
# transaction, as the superuser, while the nodes run. Written for 0007: a
# release that adds 0008 makes the version check below fail until this is
# rewritten for that migration.
UNDONE_VERSION = 7
UNDO_NEWEST = """
DROP TRIGGER audit_no_delete ON audit;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
DROP FUNCTION audit_prune_only();
DROP TABLE audit_checkpoint;
DROP FUNCTION audit_checkpoint_forward();
DELETE FROM schema_migrations WHERE version = 7;
"""
# The schema's shape: every table, every trigger with its function, every function.
CATALOG = """
SELECT 'table ' || tablename FROM pg_tables WHERE schemaname = 'public'
UNION ALL
SELECT 'trigger ' || c.relname || '.' || t.tgname || ' -> ' || p.proname
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
 WHERE NOT t.tgisinternal
UNION ALL
SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
"""
# What the runtime role may do, table by table (setup.sql's default privileges
# must reach a table the upgrade creates).
GRANTS = """
SELECT table_name || ' ' || privilege_type FROM information_schema.role_table_grants
 WHERE grantee = $1
"""
CLI_BOUND_SECS = 120.0  # hang guard for one CLI run


@dataclass(frozen=True)
class Database:
    owner: str  # URL as the owner role: migrates
    app: str  # URL as the runtime role: what the nodes use
    admin: str  # URL as the superuser, for undoing the newest migration
    app_role: str


def _role_url(role: str, db: str) -> str:
    parts = urlsplit(ADMIN_URL)
    return f"postgresql://{role}@{parts.hostname}:{parts.port or 5432}/{db}"


def _psql(psql: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([psql, ADMIN_URL, "-X", "-q", "-v", "ON_ERROR_STOP=1", *args],
                          capture_output=True, text=True, timeout=CLI_BOUND_SECS, check=False)


@pytest.fixture
async def database() -> AsyncIterator[Database]:
    """A database and its two roles made by deploy/postgres/setup.sql, with
    names of this test's own (roles are global to the server); dropped after."""
    await require_server()
    psql = require_tool("psql", "apt-get install postgresql-client")
    tag = secrets.token_hex(4)
    owner, app, db = f"chat_owner_{tag}", f"chat_app_{tag}", f"chat_db_{tag}"
    made = await asyncio.to_thread(
        _psql, psql, f"--variable=owner={owner}", f"--variable=app={app}", f"--variable=db={db}",
        "-f", str(DEPLOY / "postgres" / "setup.sql"))
    try:
        assert made.returncode == 0, made.stderr
        yield Database(_role_url(owner, db), _role_url(app, db), database_url(db), app)
    finally:
        dropped = await asyncio.to_thread(
            _psql, psql, "-c", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)',
            "-c", f'DROP ROLE IF EXISTS "{app}"', "-c", f'DROP ROLE IF EXISTS "{owner}"')
        assert dropped.returncode == 0, dropped.stderr


def _cli(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CHATSERVER, *args], env=dict(env), capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=CLI_BOUND_SECS, check=False)


async def store_migrate(data_dir: Path, url: str) -> subprocess.CompletedProcess[str]:
    """``chatserver store migrate`` as an operator runs it, against ``url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env.update(CHAT_CONFIG=str(REPO_ROOT / "config" / "test.toml"),
               CHAT_DATA_DIR=str(data_dir), CHAT_DATABASE_URL=url)
    return await asyncio.to_thread(_cli, env, "store", "migrate")


async def _fetch(url: str, query: str, *args: object) -> list[str]:
    con = await asyncpg.connect(url)
    try:
        return sorted(str(row[0]) for row in await con.fetch(query, *args))
    finally:
        await con.close()


async def _versions(url: str) -> list[int]:
    return [int(v) for v in await _fetch(url, "SELECT version FROM schema_migrations")]


async def previous_release_catalog() -> list[str]:
    """The shape of a database that the store's own migrator took up to the
    version before the newest (the newest left out of its list), on a
    database of its own."""
    async with fresh_database() as url:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(postgres, "migrations", lambda backend: MIGRATIONS[:-1])
            async with PostgresStore.open(url):
                pass
        return await _fetch(url, CATALOG)


async def test_a_rolling_upgrade_with_a_migration_between_loses_nothing(
        tmp_path: Path, redis_primary: RedisServer, database: Database) -> None:
    assert NEWEST == UNDONE_VERSION, "UNDO_NEWEST undoes another migration than the newest"
    installed = await store_migrate(tmp_path / "install", database.owner)
    assert installed.returncode == 0, installed.stderr
    newest_catalog = await _fetch(database.admin, CATALOG)
    newest_grants = await _fetch(database.admin, GRANTS, database.app_role)

    async with cluster(tmp_path / "cluster", redis_primary, database.app, nodes=3) as c:
        logins = iter(await c.add_staff(5))  # before the undo: made through the store

        async def login_on(node: str) -> None:  # an audit entry written by ``node``
            await c.login(next(logins), node)

        talks = await start_talks(c, [("n1", "n2"), ("n2", "n3"), ("n3", "n1")])
        try:
            await more_sent(c, talks, 5)

            # The database of the previous release, under the running nodes.
            con = await asyncpg.connect(database.admin)
            try:
                async with con.transaction():
                    await con.execute(UNDO_NEWEST)
            finally:
                await con.close()
            assert await _versions(database.admin) == [v for v, _, _ in MIGRATIONS[:-1]]
            assert await _fetch(database.admin, CATALOG) == await previous_release_catalog()
            await login_on("n1")
            await more_sent(c, talks, 5)

            # The upgrade: the owner migrates while every node serves...
            upgraded = await store_migrate(tmp_path / "upgrade", database.owner)
            assert upgraded.returncode == 0, upgraded.stderr
            assert upgraded.stdout.startswith(f"postgresql: schema at version {NEWEST} ")
            await login_on("n2")
            await more_sent(c, talks, 5)
            # ... then each node restarts on the new release, one at a time.
            for node in ("n1", "n2", "n3"):
                await c.restart(node)  # waits for its /readyz
                await login_on(node)
                await more_sent(c, talks, 5)
            await finish(c, talks)
            assert all(side.reconnects >= 1 for t in talks for side in t.sides)
            for t in talks:  # every conversation whole: still active at epoch 1
                for side in t.sides:
                    assert side.client.conversations[t.conversation].state == "active"
                    assert side.client.conversations[t.conversation].epoch == 1
        finally:
            await close_talks(talks)
        verify_env = dict(c.nodes["n1"].env)  # the nodes' settings and secrets

    assert await _versions(database.admin) == [v for v, _, _ in MIGRATIONS]
    assert await _fetch(database.admin, CATALOG) == newest_catalog
    assert await _fetch(database.admin, GRANTS, database.app_role) == newest_grants
    logged_in = await _fetch(database.admin,
                             "SELECT actor FROM audit WHERE action = 'login_ok'")
    assert len(logged_in) == 3 + 5  # the talks' counsellors and the five above
    verified = await asyncio.to_thread(_cli, verify_env, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert not [n for n, text in c.logs().items() if "Traceback" in text], c.log_excerpt()
