"""Start and stop the servers under test, each pinned to the server core.

Three stacks speak to the same swarm:
  bare  — loadtests/baselines/bare_aiohttp.py
  sio   — loadtests/baselines/stock_socketio.py
  chat  — chatserver (loadtests/chat_server.py = ``chatserver serve`` + the GC policy)
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatserver.settings import REPO_ROOT
from loadtests import stalls

LOAD_CONFIG = Path(__file__).with_name("load.toml")
PYTHON = sys.executable

# Rate limits are per connection (and starts and logins per client address).
# Every swarm client comes from 127.0.0.1, so the per-address ones must be
# unlimited; the
# relay/ramp scenarios also lift the per-connection buckets, since saturation
# sends as fast as acks come back. Peak keeps the shipped per-connection limits.
NO_START_LIMIT = {"rate_starts_per_hour": 10**9, "rate_logins_per_hour": 10**9}
NO_RATE_LIMITS = {
    **NO_START_LIMIT,
    "rate_send_per_min": 10**9, "rate_send_burst": 10**6,
    "rate_other_per_min": 10**9, "rate_other_burst": 10**6,
}


def cores() -> tuple[str | None, str | None]:
    """(server core, generator core) for taskset, or Nones on a 1-core box."""
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return None, None
    return "0", "1"


def pinned(cmd: list[str], core: str | None) -> list[str]:
    return ["taskset", "-c", core, *cmd] if core is not None else cmd


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    stack: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    data_dir: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    gc_stats_path: Path | None = None

    def gc_stats(self) -> dict[str, Any]:
        """The server's GC pause record (loadtests/gcstats.py), after stop()."""
        try:
            return dict(json.loads(self.gc_stats_path.read_text())) if self.gc_stats_path else {}
        except (OSError, ValueError):
            return {}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        stop_process(self.proc, self.data_dir)


def _wait_healthy(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.stack} server exited: see {server.log_path}")
        try:
            with urllib.request.urlopen(server.base + "/healthz", timeout=1) as r:  # noqa: S310 (loopback)
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{server.stack} server did not answer /healthz: see {server.log_path}")


def chat_env(data_dir: Path, port: int, overrides: dict[str, Any]) -> dict[str, str]:
    env = {
        "CHAT_CONFIG": str(LOAD_CONFIG),
        "CHAT_DATA_DIR": str(data_dir),
        "CHAT_HOST": "127.0.0.1",
        "CHAT_PORT": str(port),
        "CHAT_PUBLIC_ORIGIN": f"http://localhost:{port}",
    }
    for key, value in overrides.items():
        env["CHAT_" + key.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def start(stack: str, log_dir: Path, *, core: str | None,
          chat_overrides: dict[str, Any] | None = None, accounts: tuple[int, int] = (0, 0),
          root: Path = REPO_ROOT) -> tuple[Server, list[dict[str, Any]]]:
    """Start one server from the source tree ``root``; for chat, first create
    ``accounts`` = (count, capacity) counsellor accounts in its fresh data dir.
    Returns the server and the accounts."""
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"server-{stack}-{port}.log"
    gc_stats = log_dir / f"gc-{stack}-{port}.json"
    env = {**os.environ, "PYTHONPATH": str(root), "LOADTEST_GC_STATS": str(gc_stats)}
    if os.environ.get(stalls.ENV) == "1":  # `run --stalls`: a record per server
        env[stalls.ENV] = str(log_dir / f"stalls-{stack}-{port}.json")
    data_dir: Path | None = None
    created: list[dict[str, Any]] = []
    overrides = dict(chat_overrides or {})
    if stack == "bare":
        cmd = [PYTHON, "-m", "loadtests.baselines.bare_aiohttp", "--port", str(port)]
    elif stack == "sio":
        cmd = [PYTHON, "-m", "loadtests.baselines.stock_socketio", "--port", str(port)]
    elif stack == "chat":
        data_dir = Path(tempfile.mkdtemp(prefix="chat-load-"))
        env.update(chat_env(data_dir, port, overrides))
        if accounts[0]:
            made = subprocess.run([PYTHON, "-m", "loadtests.accounts", *map(str, accounts)],
                                  cwd=root, env=env, capture_output=True, text=True, check=True)
            created = json.loads(made.stdout)
        cmd = [PYTHON, "-m", "loadtests.chat_server"]
    else:
        raise ValueError(f"unknown stack {stack!r}")
    with log_path.open("wb") as log:
        proc = subprocess.Popen(pinned(cmd, core), cwd=root, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    server = Server(stack, port, proc, log_path, data_dir, overrides, gc_stats)
    try:
        _wait_healthy(server)
    except Exception:
        server.stop()
        raise
    return server, created


def stop_process(proc: subprocess.Popen[bytes], data_dir: Path | None) -> None:
    """SIGTERM, SIGKILL if it lingers; then its data directory goes."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    if data_dir is not None:
        shutil.rmtree(data_dir, ignore_errors=True)
