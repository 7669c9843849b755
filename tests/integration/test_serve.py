"""``chatserver serve`` as a newcomer runs it: a real process on a real port,
started with nothing but ``CHAT_PORT`` and a data directory.

- The origin follows the port unless it is set, so a youth's page on
  ``http://localhost:<port>/`` can connect (before, every socket was refused
  as a foreign Origin and the page said "Connecting…", then "no connection").
- The start-up line names the URL to open and, while there is no staff
  account, the command that creates the first one.
- A port that is already taken is one clear line on stderr and a non-zero
  exit, before anything says "ready".
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatserver.client.reference import ReferenceClient
from chatserver.settings import REPO_ROOT
from chatserver.startup import FIRST_STAFF_ARGS
from tests.conftest import free_port
from tests.helpers import server_process

CLI = Path(sys.executable).parent / "chatserver"
START_UP_BOUND_SECS = 60  # a generous bound on a loaded machine; we wait for the line


def newcomer_env(data_dir: Path, port: int) -> dict[str, str]:
    """The environment of someone who set only the port: no CHAT_* but these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env.update(CHAT_PORT=str(port), CHAT_DATA_DIR=str(data_dir))
    return env


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path, int]]:
    port = free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([str(CLI), "serve"], cwd=REPO_ROOT,
                                env=newcomer_env(tmp_path / "var", port),
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc, log_path, port
    finally:
        server_process.terminate(proc, secs=10)


def wait_for_line(proc: subprocess.Popen[bytes], log_path: Path, needle: str) -> str:
    """The first log line containing ``needle``; fails if the process exits first."""
    deadline = time.monotonic() + START_UP_BOUND_SECS
    while time.monotonic() < deadline:
        text = log_path.read_text(encoding="utf-8", errors="replace")
        for line in text.splitlines():
            if needle in line:
                return line
        if proc.poll() is not None:
            raise AssertionError(f"chatserver exited ({proc.returncode}):\n{text[-2000:]}")
        time.sleep(0.1)
    raise AssertionError(f"no line with {needle!r} in:\n{log_path.read_text()[-2000:]}")


def test_the_port_alone_gives_a_server_a_youth_can_reach(
        server: tuple[subprocess.Popen[bytes], Path, int]) -> None:
    proc, log_path, port = server
    ready = wait_for_line(proc, log_path, "chatserver ready")
    url = f"http://localhost:{port}"

    async def youth_asks_for_status() -> dict[str, object]:
        youth = ReferenceClient()
        try:
            # Origin: http://localhost:<port>, what a browser on that page sends.
            await youth.connect(url, "/youth")
            return await youth.status()
        finally:
            await youth.close()

    status = asyncio.run(youth_asks_for_status())
    assert status["ok"] is True and status["open"] is False  # nobody on duty yet
    # The line says where to go and how to make the first staff account.
    assert f"open {url}/ " in ready
    assert f"{url}/console" in ready
    assert f"chatserver {FIRST_STAFF_ARGS}" in ready


def test_a_port_in_use_is_one_clear_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([str(CLI), "serve"], cwd=REPO_ROOT,
                                env=newcomer_env(tmp_path / "var", port),
                                capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0] == (f"chatserver: cannot listen on 127.0.0.1:{port}: the port is already "
                        "in use (is another chatserver running? choose another port with "
                        "CHAT_PORT)")
    assert "chatserver ready" not in result.stderr
