"""deploy/systemd/: the units pass ``systemd-analyze verify`` (unknown keys
and bad values included, which verify only warns about) and the node's
sandbox scores as systemd's own "OK" exposure (docs/operations.md)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from chatserver.settings import REPO_ROOT, load_settings
from tests.helpers.deploy import DEPLOY, require_tool

UNITS = DEPLOY / "systemd"
INSTALLED_BINARY = "/opt/chatserver/.venv/bin/chatserver"
# systemd-analyze security: up to 2.0 is "OK", the best band it names.
MAX_EXPOSURE = 2.0


def _units_here(dest: Path) -> Path:
    """The units with ExecStart pointed at this checkout's binary (verify
    checks that the command exists and is executable)."""
    dest.mkdir()
    for unit in UNITS.iterdir():
        text = unit.read_text().replace(INSTALLED_BINARY,
                                        str(REPO_ROOT / ".venv" / "bin" / "chatserver"))
        (dest / unit.name).write_text(text)
    return dest


def _analyze(where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    tool = require_tool("systemd-analyze", "apt-get install systemd")
    return subprocess.run([tool, *args], cwd=where, capture_output=True, text=True,
                          timeout=120, check=False, env={"SYSTEMD_LOG_COLOR": "0",
                                                         "PATH": "/usr/bin:/bin"})


def test_units_verify_without_a_warning(tmp_path: Path) -> None:
    units = _units_here(tmp_path / "units")
    assert (UNITS / "chatserver@.service").read_text().count(INSTALLED_BINARY) == 1
    out = _analyze(units, "verify", "./chatserver@a.service", "./chatserver.target")
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == "" and out.stdout.strip() == "", out.stderr + out.stdout


def test_node_sandbox_exposure_is_ok(tmp_path: Path) -> None:
    units = _units_here(tmp_path / "units")
    out = _analyze(units, "security", "--offline=true", "--no-pager",
                   "./chatserver@a.service")
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out.stdout)
    assert found, out.stdout + out.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE, out.stdout


def test_node_unit_names_its_node_and_keeps_the_promises() -> None:
    lines = set((UNITS / "chatserver@.service").read_text().splitlines())
    for wanted in ("Environment=CHAT_NODE_ID=%i", "Restart=on-failure", "LimitCORE=0",
                   "EnvironmentFile=/etc/chatserver/secrets.env", "ProtectSystem=strict",
                   "PrivateTmp=yes", "NoNewPrivileges=yes", "StateDirectory=chatserver/%i",
                   "WantedBy=chatserver.target"):
        assert wanted in lines, wanted
    # Nothing writable but the state directory.
    assert not [line for line in lines if line.startswith("ReadWritePaths=")]


def test_node_unit_environment_is_read_as_the_node_settings(tmp_path: Path) -> None:
    """The unit's Environment= lines, for instance ``a``, are settings
    chatserver reads: node_id from the instance name, data_dir the state
    directory (the config file itself is the test's here)."""
    env = {}
    for line in (UNITS / "chatserver@.service").read_text().splitlines():
        if line.startswith("Environment="):
            key, _, value = line.removeprefix("Environment=").partition("=")
            env[key] = value.replace("%i", "a")
    assert env.pop("CHAT_CONFIG") == "/etc/chatserver/production.toml"
    assert env["CHAT_DATA_DIR"] == "/var/lib/chatserver/a"
    env["CHAT_DATA_DIR"] = str(tmp_path / "a")  # the same key, somewhere writable
    settings = load_settings(config_file=REPO_ROOT / "config" / "test.toml", env=env)
    assert settings.node_id == "a"
    assert settings.data_dir == str(tmp_path / "a")
