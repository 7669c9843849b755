"""``chatserver partners export | import`` as real subprocesses on a real
SQLite file: a TOML and a CSV round trip, an import that retires what the
file leaves out, and a bad file that changes nothing and says where it is bad."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from chatserver.domain.referrals import load_directory
from chatserver.settings import REPO_ROOT, Settings
from chatserver.storage.sqlite import SqliteStore

CLI = Path(sys.executable).parent / "chatserver"
SHIPPED = REPO_ROOT / "config" / "partners.toml"


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env.update(CHAT_DATA_DIR=str(data_dir), CHAT_CONFIG="config/test.toml")
    return subprocess.run([str(CLI), "partners", *args], capture_output=True, text=True,
                          env=env, cwd=REPO_ROOT, timeout=60, check=False)


def audit_of(data_dir: Path) -> list[tuple[str, str, dict[str, object]]]:
    async def read() -> list[tuple[str, str, dict[str, object]]]:
        async with SqliteStore.open(data_dir / Settings().database_file) as store:
            return [(e.actor, e.action, json.loads(e.detail)) async for e in store.iter_audit()]

    return asyncio.run(read())


def test_toml_and_csv_round_trip_and_an_import_retires_what_it_leaves_out(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    shipped = len(load_directory(SHIPPED).everything())
    imported = run(data, "import", str(SHIPPED))
    assert imported.returncode == 0, imported.stderr
    assert f"imported {shipped} partner entries" in imported.stdout

    toml_out = run(data, "export", "--format", "toml")
    assert toml_out.returncode == 0, toml_out.stderr
    (tmp_path / "again.toml").write_text(toml_out.stdout, encoding="utf-8")
    assert run(data, "import", str(tmp_path / "again.toml")).returncode == 0
    assert run(data, "export", "--format", "toml").stdout == toml_out.stdout  # a fixed point

    csv_out = run(data, "export", "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(csv_out)))
    assert len(rows) == shipped + 1 and rows[0][:4] == ["code", "name", "name_en", "kind"]
    # The municipality's answer: one new number, one partner gone from the list.
    kept = []
    for row in rows:
        if row[0] == "soc-ekero":
            continue
        if row[0] == "soc-haninge":
            row[6] = "08-606 70 00"
        kept.append(row)
    edited = tmp_path / "checked.csv"
    with edited.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(kept)
    result = run(data, "import", str(edited))
    assert result.returncode == 0, result.stderr
    assert "1 entries not in the file were retired" in result.stdout

    after = {r[0]: r for r in csv.reader(io.StringIO(run(data, "export", "--format",
                                                        "csv").stdout))}
    assert after["soc-haninge"][6] == "08-606 70 00"
    assert after["soc-ekero"][13] == "yes"  # retired, never deleted
    imports = [(a, act, d) for a, act, d in audit_of(data) if act == "partners_imported"]
    assert imports[-1] == ("cli", "partners_imported",
                           {"count": shipped - 1, "retired": 1})
    assert len(imports) == 3


def test_a_bad_file_changes_nothing_and_names_the_entry(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(data, "import", str(SHIPPED)).returncode == 0
    before = run(data, "export", "--format", "csv").stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(SHIPPED.read_text("utf-8").replace(
        'phone = "114 14"', 'phone = "114 14 ring"'), encoding="utf-8")
    result = run(data, "import", str(bad))
    assert result.returncode == 1
    assert "'polisen'" in result.stderr and "'phone'" in result.stderr
    assert "nothing was imported" in result.stderr
    unknown = tmp_path / "partners.xlsx"
    unknown.write_text("x", encoding="utf-8")
    assert run(data, "import", str(unknown)).returncode == 1
    assert run(data, "export", "--format", "csv").stdout == before
    assert [act for _, act, _ in audit_of(data)].count("partners_imported") == 1


def test_an_export_is_audited_with_its_format(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run(data, "import", str(SHIPPED)).returncode == 0
    assert run(data, "export", "--format", "csv").returncode == 0
    assert run(data, "export").returncode == 0
    shipped = len(load_directory(SHIPPED).everything())
    exported = [(a, d) for a, act, d in audit_of(data) if act == "partners_exported"]
    assert exported == [("cli", {"format": "csv", "count": shipped}),
                        ("cli", {"format": "toml", "count": shipped})]


def test_a_database_that_cannot_be_read_is_one_line_and_exit_1(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / Settings().database_file).write_bytes(b"not a database " * 512)
    for args in (("export",), ("import", str(SHIPPED))):
        result = run(data, *args)
        assert result.returncode == 1, args
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith("chatserver partners: error: cannot ")
        assert "file is not a database" in result.stderr
        assert len(result.stderr.splitlines()) == 1 and result.stdout == ""


def test_missing_secrets_are_named_without_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env.update(CHAT_DATA_DIR=str(tmp_path), CHAT_CONFIG="config/test.toml",
               CHAT_GENERATE_SECRETS="false")
    for args in (["partners", "export"], ["stats", "export", "--from", "2026-01",
                                          "--to", "2026-01"]):
        result = subprocess.run([str(CLI), *args], capture_output=True, text=True, env=env,
                                cwd=REPO_ROOT, timeout=60, check=False)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr and "CHAT_SECRET_AUDIT_KEY" in result.stderr
