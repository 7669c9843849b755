"""``chatserver staff …`` and ``chatserver audit verify`` as real subprocesses
against a real SQLite file, then a login with the provisioned TOTP seed."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from chatserver.crypto import totp
from chatserver.domain import auth
from chatserver.domain.audit import AuditLog
from chatserver.domain.clock import SystemClock
from chatserver.settings import REPO_ROOT, load_settings
from chatserver.storage.sqlite import SqliteStore

CLI = Path(sys.executable).parent / "chatserver"
PW = "correct horse battery staple"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def run(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env.update(CHAT_DATA_DIR=str(data_dir), CHAT_CONFIG="config/test.toml")
    return subprocess.run([str(CLI), *args], input=stdin, capture_output=True, text=True,
                          env=env, cwd=REPO_ROOT, timeout=60, check=False)


def add_anna(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return run(data_dir, "staff", "add", "anna", "--role", "counsellor", "--alias", "Sara",
               "--capacity", "2", "--password-stdin", stdin=PW + "\n")


def seed_from(stdout: str) -> str:
    uri = next(line for line in stdout.splitlines() if line.startswith("otpauth://"))
    parsed = urlparse(uri)
    assert parsed.netloc == "totp"
    return parse_qs(parsed.query)["secret"][0]


def test_staff_add_prints_provisioning_once_and_stores_no_secret(data_dir: Path) -> None:
    result = add_anna(data_dir)
    assert result.returncode == 0, result.stderr
    assert "added anna: role counsellor, alias 'Sara', capacity 2" in result.stdout
    seed = seed_from(result.stdout)
    assert "issuer=chatserver" in result.stdout
    assert "█" in result.stdout or "▀" in result.stdout  # the terminal QR code
    assert PW not in result.stdout + result.stderr
    db = (data_dir / "chatserver.sqlite3").read_bytes()
    assert seed.encode() not in db and PW.encode() not in db
    assert b"$argon2id$" in db


def test_staff_add_refusals(data_dir: Path) -> None:
    assert add_anna(data_dir).returncode == 0
    again = add_anna(data_dir)
    assert again.returncode == 1 and "account_exists" in again.stderr
    short = run(data_dir, "staff", "add", "bo", "--role", "counsellor", "--alias", "B",
                "--password-stdin", stdin="too short\n")
    assert short.returncode == 1 and "at least 12" in short.stderr
    assert "too short" not in short.stderr
    bad_role = run(data_dir, "staff", "add", "bo", "--role", "boss", "--alias", "B",
                   "--password-stdin", stdin=PW + "\n")
    assert bad_role.returncode == 2  # argparse refuses the choice
    listing = run(data_dir, "staff", "list")
    assert "bo" not in listing.stdout.split()


def test_list_disable_enable_and_audit(data_dir: Path) -> None:
    assert add_anna(data_dir).returncode == 0
    assert run(data_dir, "staff", "add", "op1", "--role", "operator", "--alias", "Drift",
               "--password-stdin", stdin=PW + "\n").returncode == 0

    listing = run(data_dir, "staff", "list")
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["USERNAME", "ROLE", "ALIAS", "CAPACITY", "DISABLED"]
    assert lines[1].split() == ["anna", "counsellor", "Sara", "2", "no"]
    assert lines[2].split() == ["op1", "operator", "Drift", "3", "no"]
    assert "argon2" not in listing.stdout and "otpauth" not in listing.stdout

    assert run(data_dir, "staff", "disable", "anna").returncode == 0
    assert run(data_dir, "staff", "list").stdout.splitlines()[1].split()[-1] == "yes"
    assert run(data_dir, "staff", "enable", "anna").returncode == 0
    assert run(data_dir, "staff", "list").stdout.splitlines()[1].split()[-1] == "no"
    unknown = run(data_dir, "staff", "disable", "nobody")
    assert unknown.returncode == 1 and "unknown_account" in unknown.stderr

    verify = run(data_dir, "audit", "verify", "--print-head")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # account_added ×2, account_disabled, account_enabled
    assert "audit log OK: 4 entries" in verify.stdout
    head = verify.stdout.split("hash=")[1].strip()
    assert len(head) == 64
    assert run(data_dir, "audit", "verify", "--expect-head", head).returncode == 0

    # Someone with the file drops the triggers and edits entry 2.
    con = sqlite3.connect(data_dir / "chatserver.sqlite3")
    con.execute("DROP TRIGGER audit_no_update")
    con.execute("UPDATE audit SET actor = 'someone' WHERE seq = 2")
    con.commit()
    con.close()
    broken = run(data_dir, "audit", "verify")
    assert broken.returncode == 1
    assert "BROKEN at seq 2" in broken.stdout and "edited" in broken.stdout


def test_truncation_is_caught_with_the_expected_head(data_dir: Path) -> None:
    assert add_anna(data_dir).returncode == 0
    assert run(data_dir, "staff", "disable", "anna").returncode == 0
    head = run(data_dir, "audit", "verify", "--print-head").stdout.split("hash=")[1].strip()
    con = sqlite3.connect(data_dir / "chatserver.sqlite3")
    con.execute("DROP TRIGGER audit_no_delete")
    con.execute("DELETE FROM audit WHERE seq = 2")
    con.commit()
    con.close()
    assert run(data_dir, "audit", "verify").returncode == 0  # the documented limit
    caught = run(data_dir, "audit", "verify", "--expect-head", head)
    assert caught.returncode == 1 and "head" in caught.stdout


def test_a_cli_account_can_log_in(data_dir: Path) -> None:
    created = add_anna(data_dir)
    seed = seed_from(created.stdout)
    settings = load_settings(REPO_ROOT / "config" / "test.toml", env={},
                             overrides={"data_dir": str(data_dir)})

    async def login() -> str:
        clock = SystemClock()
        async with SqliteStore.open(settings.database_path) as store:
            staff = await auth.login(
                "anna", PW, totp.code_at(seed, clock.now()), store=store,
                audit=AuditLog(store, clock), clock=clock, settings=settings,
                guard=auth.LoginGuard(settings.password_profile))
            return staff.alias

    assert asyncio.run(login()) == "Sara"
    verify = run(data_dir, "audit", "verify")
    assert "audit log OK: 2 entries" in verify.stdout  # account_added, login_ok
