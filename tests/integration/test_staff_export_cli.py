"""``chatserver staff export <username>`` as a real subprocess: everything held
about one staff member as JSON (a data subject request), never a credential,
and itself audited."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.integration.test_cli import PW, add_anna, data_dir, run, seed_from

__all__ = ["data_dir"]  # the fixture


def test_export_prints_the_account_and_its_audit_entries(data_dir: Path) -> None:
    created = add_anna(data_dir)
    seed = seed_from(created.stdout)
    assert run(data_dir, "staff", "languages", "anna", "sv,ar").returncode == 0
    assert run(data_dir, "staff", "disable", "anna").returncode == 0
    done = run(data_dir, "staff", "export", "anna")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    account = got["account"]
    assert (account["username"], account["role"], account["alias"], account["languages"],
            account["disabled"]) == ("anna", "counsellor", "Sara", ["sv", "ar"], True)
    assert [(e["actor"], e["action"], e["detail"]["target"]) for e in got["audit_entries"]] == [
        ("cli", "account_added", "anna"), ("cli", "account_languages", "anna"),
        ("cli", "account_disabled", "anna")]
    assert got["audit_retention_days"] == 730
    # Credentials stay in: not the password, its hash, or the TOTP seed.
    con = sqlite3.connect(data_dir / "chatserver.sqlite3")
    pw_hash = con.execute("SELECT password_hash FROM staff").fetchone()[0]
    for secret in (PW, pw_hash, seed):
        assert secret not in done.stdout
    # The export itself is audited; an unknown account is refused and is not.
    assert con.execute("SELECT actor, detail FROM audit WHERE action = 'staff_exported'"
                       ).fetchall() == [("cli", '{"count":3,"target":"anna"}')]
    refused = run(data_dir, "staff", "export", "nobody")
    assert refused.returncode == 1 and "unknown_account" in refused.stderr
    assert refused.stdout == ""
    assert con.execute("SELECT COUNT(*) FROM audit WHERE action = 'staff_exported'"
                       ).fetchone()[0] == 1
    con.close()
