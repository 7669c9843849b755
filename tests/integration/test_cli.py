"""``chatserver staff …`` and ``chatserver audit verify`` as real subprocesses
against a real SQLite file, then a login with the provisioned TOTP seed; and
a database from before the audit key, upgraded and sealed by a real server."""

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
from chatserver.startup import CannotStart
from chatserver.storage.sqlite import SqliteStore
from tests.conftest import free_port, make_settings, start_server
from tests.unit.test_audit import append_forged, write_unkeyed_log

CLI = Path(sys.executable).parent / "chatserver"
PW = "correct horse battery staple"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def run(data_dir: Path, *args: str, stdin: str = "", **chat_env: str
        ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env.update(CHAT_DATA_DIR=str(data_dir), CHAT_CONFIG="config/test.toml", **chat_env)
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
    assert lines[0].split() == ["USERNAME", "ROLE", "ALIAS", "CAPACITY", "DISABLED", "LANGUAGES"]
    assert lines[1].split() == ["anna", "counsellor", "Sara", "2", "no", "-"]
    assert lines[2].split() == ["op1", "operator", "Drift", "3", "no", "-"]
    assert "argon2" not in listing.stdout and "otpauth" not in listing.stdout

    assert run(data_dir, "staff", "disable", "anna").returncode == 0
    assert run(data_dir, "staff", "list").stdout.splitlines()[1].split()[4] == "yes"
    assert run(data_dir, "staff", "enable", "anna").returncode == 0
    assert run(data_dir, "staff", "list").stdout.splitlines()[1].split()[4] == "no"
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


def test_staff_languages_are_set_listed_and_audited(data_dir: Path) -> None:
    assert add_anna(data_dir).returncode == 0
    done = run(data_dir, "staff", "languages", "anna", "so,sv,ckb")
    assert done.returncode == 0, done.stderr
    assert "anna speaks so, sv, ckb" in done.stdout
    assert run(data_dir, "staff", "list").stdout.splitlines()[1].split()[-1] == "so,sv,ckb"
    # A code outside the chat-language list, a repeat, an unknown account:
    # refused, nothing changed, nothing audited.
    for args, said in ((("anna", "sv,xx"), "unknown language 'xx'"),
                       (("anna", "sv,sv"), "named twice"),
                       (("nobody", "sv"), "unknown_account")):
        refused = run(data_dir, "staff", "languages", *args)
        assert refused.returncode == 1 and said in refused.stderr, refused.stderr
    assert run(data_dir, "staff", "list").stdout.splitlines()[1].split()[-1] == "so,sv,ckb"
    assert run(data_dir, "staff", "languages", "anna", "").returncode == 0
    assert run(data_dir, "staff", "list").stdout.splitlines()[1].split()[-1] == "-"

    async def entries() -> list[tuple[str, str, str]]:
        async with SqliteStore.open(data_dir / "chatserver.sqlite3") as store:
            return [(e.actor, e.action, e.detail) async for e in store.iter_audit()]

    got = asyncio.run(entries())
    assert [e for e in got if e[1] == "account_languages"] == [
        ("cli", "account_languages", '{"languages":"so+sv+ckb","target":"anna"}'),
        ("cli", "account_languages", '{"languages":"","target":"anna"}'),
    ]
    assert run(data_dir, "audit", "verify").returncode == 0


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
                audit=AuditLog(store, clock, settings.require_secrets().audit_key),
                clock=clock, settings=settings,
                guard=auth.LoginGuard(settings.password_profile))
            return staff.alias

    assert asyncio.run(login()) == "Sara"
    verify = run(data_dir, "audit", "verify")
    assert "audit log OK: 2 entries" in verify.stdout  # account_added, login_ok


# ------------------------------------------------------------ audit verify


def _edit(data_dir: Path, sql: str) -> None:
    """Someone with the file drops the triggers and runs ``sql``."""
    con = sqlite3.connect(data_dir / "chatserver.sqlite3")
    try:
        con.execute("DROP TRIGGER IF EXISTS audit_no_update")
        con.execute("DROP TRIGGER IF EXISTS audit_no_delete")
        con.execute(sql)
        con.commit()
    finally:
        con.close()


def test_a_broken_chain_is_one_line_and_exit_1(data_dir: Path) -> None:
    assert add_anna(data_dir).returncode == 0
    assert run(data_dir, "staff", "disable", "anna").returncode == 0
    assert run(data_dir, "staff", "enable", "anna").returncode == 0
    _edit(data_dir, "UPDATE audit SET actor = 'someone' WHERE seq = 2")
    broken = run(data_dir, "audit", "verify")
    assert broken.returncode == 1
    # One line naming where it breaks, and nothing else: no traceback (the
    # walk used to be left open and closed after the database, on stderr).
    assert broken.stderr == ""
    assert broken.stdout.splitlines() == [
        "audit log BROKEN at seq 2: entry 2 has a wrong MAC: it was edited or forged "
        "without the audit key, or this is not the key it was written with "
        "(1 entries before it are intact)"]


def test_a_forged_entry_appended_to_the_file_fails_verify(data_dir: Path) -> None:
    assert add_anna(data_dir).returncode == 0
    append_forged(data_dir / "chatserver.sqlite3")  # the public hash, as the old chain took
    forged = run(data_dir, "audit", "verify")
    assert forged.returncode == 1 and forged.stderr == ""
    assert forged.stdout.startswith("audit log BROKEN at seq 2: entry 2 has a wrong MAC")


def test_verify_exit_codes_when_it_cannot_check(data_dir: Path) -> None:
    missing = run(data_dir, "audit", "verify")
    assert (missing.returncode, missing.stdout) == (3, "")
    assert missing.stderr.startswith("chatserver audit: error: no database at ")
    assert not (data_dir / "chatserver.sqlite3").exists()  # verify created nothing
    (data_dir / "chatserver.sqlite3").write_bytes(b"not a database" * 100)
    garbage = run(data_dir, "audit", "verify")
    assert garbage.returncode == 3 and "Traceback" not in garbage.stderr
    assert len(garbage.stderr.splitlines()) == 1 and "cannot read" in garbage.stderr
    usage = run(data_dir, "audit", "verify", "--expect-head", "nothex")
    assert usage.returncode == 2 and "64-character" in usage.stderr


async def test_a_database_from_before_the_key_is_upgraded_and_sealed(data_dir: Path) -> None:
    # Given a deployment from before the audit key: three secrets, three
    # entries on the unkeyed chain
    links = write_unkeyed_log(data_dir / "chatserver.sqlite3", 3)
    old_secrets = "".join(f'{name} = "{"A" * 43}"\n'
                          for name in ("pepper", "session_key", "totp_key"))
    (data_dir / "secrets.toml").write_text(old_secrets)

    # When secrets are provisioned (production): the missing key is named
    refused = run(data_dir, "audit", "verify", CHAT_GENERATE_SECRETS="false")
    assert refused.returncode == 2 and "CHAT_SECRET_AUDIT_KEY" in refused.stderr

    # When the key exists but no server has run with it yet: not sealed
    unsealed = run(data_dir, "audit", "verify")
    assert unsealed.returncode == 1 and unsealed.stderr == ""
    assert "no keyed entry follows the 3 unkeyed ones" in unsealed.stdout

    # The server refuses to start on it (it cannot tell an old log from one
    # whose keyed part was removed), and so does every staff command
    port = free_port()
    settings = make_settings(data_dir, port=port, public_origin=f"http://localhost:{port}")
    with pytest.raises(CannotStart, match="audit seal"):
        await start_server(settings)
    staff = run(data_dir, "staff", "disable", "nobody")
    assert staff.returncode != 0 and "Traceback" not in staff.stderr

    # Sealing refuses a head other than the one noted before the upgrade
    wrong = run(data_dir, "audit", "seal", "--expect-head", "0" * 64)
    assert wrong.returncode == 1 and "refused" in wrong.stdout

    # When the operator seals it, naming the head noted before the upgrade
    sealed = run(data_dir, "audit", "seal", "--expect-head", links[-1])
    assert sealed.returncode == 0, sealed.stdout + sealed.stderr
    assert sealed.stdout == "audit log sealed: entries 1-3 by entry 4\n"
    assert run(data_dir, "audit", "seal").stdout.startswith("audit log: nothing to seal")
    runner, server = await start_server(settings)  # now it starts
    try:
        # Entry 4 is the seal; the server's own start-up entries follow it
        # (the partner directory seeded from its file).
        entries = [entry async for entry in server.ctx.store.iter_audit()]
    finally:
        await runner.cleanup()
    marker = entries[3]
    assert (marker.seq, marker.action, marker.prev_hash) == (4, "audit_keyed", links[-1])
    assert [e.action for e in entries[4:]] == ["partners_seeded"]

    # Then both parts verify, and the report names them
    ok = run(data_dir, "audit", "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.splitlines() == [
        "audit log OK: 5 entries",
        "  unkeyed: entries 1-3 (written before the audit key; sealed by entry 4)",
        "  keyed: entries 4-5",
    ]
    # ... and the head noted before the upgrade is the one the key sealed
    assert run(data_dir, "audit", "verify", "--expect-head", links[-1]).returncode == 0
