"""``chatserver store migrate`` and ``store copy`` as real subprocesses: a real
SQLite file, made by the CLI and a real store, copied into a fresh PostgreSQL
database, which ``chatserver audit verify`` and ``staff`` then use."""

from __future__ import annotations

from pathlib import Path

from chatserver.storage.postgres import PostgresStore
from chatserver.storage.schema import migrations
from chatserver.storage.sqlite import SqliteStore
from tests.helpers.postgres import fresh_database
from tests.integration.test_cli import add_anna, run

PW = "correct horse battery staple"


async def test_copy_a_sqlite_file_into_postgresql_and_verify_it_there(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert add_anna(data_dir).returncode == 0
    assert run(data_dir, "staff", "disable", "anna").returncode == 0
    db = data_dir / "chatserver.sqlite3"
    async with SqliteStore.open(db) as s:
        await s.add_counts("2027-01", {("topic", "other"): 4})
        await s.add_return_code(b"\x01" * 32, "r-1", b"sealed", 1_900_000_000.0)
    head = run(data_dir, "audit", "verify", "--print-head")
    assert head.returncode == 0, head.stderr
    sqlite_head = head.stdout.strip().splitlines()[-1]

    async with fresh_database() as url:
        migrated = run(data_dir, "store", "migrate", CHAT_DATABASE_URL=url)
        assert migrated.returncode == 0, migrated.stderr
        last = migrations("postgresql")[-1][0]
        assert migrated.stdout.startswith(f"postgresql: schema at version {last}")

        copied = run(data_dir, "store", "copy", "--from", f"sqlite:{db}", "--to", url)
        assert copied.returncode == 0, copied.stderr
        assert "1 staff" in copied.stdout and "audit chain verified" in copied.stdout

        verified = run(data_dir, "audit", "verify", "--print-head", CHAT_DATABASE_URL=url)
        assert verified.returncode == 0, verified.stderr
        assert verified.stdout.strip().splitlines()[-1] == sqlite_head  # same chain, same head

        listed = run(data_dir, "staff", "list", CHAT_DATABASE_URL=url)
        assert "anna" in listed.stdout and "yes" in listed.stdout  # disabled survived
        # New accounts continue after the copied ids, and audit after the copied head.
        added = run(data_dir, "staff", "add", "bo", "--role", "operator", "--alias", "Lina",
                     "--password-stdin", stdin=PW + "\n", CHAT_DATABASE_URL=url)
        assert added.returncode == 0, added.stderr
        again = run(data_dir, "audit", "verify", CHAT_DATABASE_URL=url)
        assert again.returncode == 0 and again.stdout.startswith("audit log OK")

        async with PostgresStore.open(url) as pg:
            assert await pg.get_counts("2027-01") == {("topic", "other"): 4}
            row = await pg.redeem_return_code(b"\x01" * 32)
            assert row is not None and row.sealed == b"sealed"
            staff = await pg.list_staff()
            assert [(s.username, s.id) for s in staff] == [("anna", 1), ("bo", 2)]

        # A second copy into a database that has rows is refused and writes nothing.
        refused = run(data_dir, "store", "copy", "--from", f"sqlite:{db}", "--to", url)
        assert refused.returncode == 1 and "already holds" in refused.stderr
        # The SQLite file is unchanged by all of this: the embedded default still works.
        assert run(data_dir, "audit", "verify").returncode == 0


def test_copy_refuses_a_password_in_the_url_and_a_missing_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with_pw = run(data_dir, "store", "copy", "--from", "sqlite:/nonexistent.sqlite3",
                  "--to", "postgresql://chat:hunter2@127.0.0.1/chat")
    assert with_pw.returncode == 2 and "password" in with_pw.stderr
    assert "hunter2" not in with_pw.stderr + with_pw.stdout
    missing = run(data_dir, "store", "copy", "--from", f"sqlite:{tmp_path}/none.sqlite3",
                  "--to", "postgresql://chat@127.0.0.1/chat")
    assert missing.returncode == 1 and "no database" in missing.stderr
    bad_setting = run(data_dir, "store", "migrate",
                      CHAT_DATABASE_URL="postgresql://chat:hunter2@127.0.0.1/chat")
    assert bad_setting.returncode == 2 and "must not hold a password" in bad_setting.stderr
    assert "hunter2" not in bad_setting.stderr + bad_setting.stdout
