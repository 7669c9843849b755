"""Start the servers of a multi-node step (profile ``multinode``): chatserver
nodes, embedded (no Redis) or on one private ``redis-server`` that holds the
live state's log (chatserver/live/replicated.py).

Every process of the server side — each node and Redis — is pinned to the
server core, so "CPU seconds per relayed message" adds up everything the
deployment spent, whatever the number of nodes, and the generator keeps its
own core. The nodes share one set of secrets and one copy of the staff
accounts: the accounts are made once in the first node's data dir (SQLite)
and that dir is copied for the others before any node starts (same account
ids and secrets everywhere; each node then writes its own audit log).
Staff sessions travel through the live state's log, as in a deployment.

Redis runs as docs/operations.md requires (``--save ""``, ``--appendonly
no``, ``noeviction``), with an ACL user that may run only the commands the
live state names (``REDIS_COMMANDS``), on its keys, no channels.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtests import stalls
from loadtests.servers import (
    PYTHON,
    Server,
    _wait_healthy,
    chat_env,
    free_port,
    pinned,
    stop_process,
)

REDIS_SERVER = os.environ.get("CHAT_TEST_REDIS_SERVER", "/usr/bin/redis-server")
REDIS_USER = "chatserver"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_secs(pid: int) -> float | None:
    """utime + stime of a process from /proc/<pid>/stat (None once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class RedisProc:
    port: int
    dir: Path
    password: str = field(repr=False)
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://{REDIS_USER}@127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        stop_process(self.proc, self.dir)


def start_redis(core: str | None) -> RedisProc:
    if not Path(REDIS_SERVER).is_file():
        raise RuntimeError(f"redis-server not found at {REDIS_SERVER} "
                           "(apt-get install redis-server, or set CHAT_TEST_REDIS_SERVER)")
    port = free_port()
    root = Path(tempfile.mkdtemp(prefix="chat-load-redis-"))
    password = "load-" + secrets.token_hex(12)
    # The nodes' user may do what the live state's contract grants and no
    # more, as in a deployment (deploy/redis/users.acl).
    from chatserver.live.replicated import REDIS_COMMANDS, REDIS_KEYS

    argv = [REDIS_SERVER, "--user", REDIS_USER, "on", f">{password}", "resetkeys",
            f"~{REDIS_KEYS}", "resetchannels", "-@all", *(f"+{c}" for c in REDIS_COMMANDS),
            "--port", str(port), "--bind", "127.0.0.1", "--dir", str(root),
            "--logfile", str(root / "redis.log"), "--daemonize", "no",
            "--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"]
    # taskset execs redis-server itself, so the pid is Redis's.
    proc = subprocess.Popen(pinned(argv, core), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RedisProc(port, root, password, proc)
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            log = (root / "redis.log").read_text(errors="replace")[-2000:] \
                if (root / "redis.log").exists() else ""
            server.stop()
            raise RuntimeError(f"redis-server exited: {log}")
        try:
            import socket
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"redis-server on port {port} did not answer PING")
        time.sleep(0.05)


@dataclass
class Cluster:
    """Duck-types loadtests.servers.Server for the runner (base, origin, pid,
    log_path, stop, gc_stats) and adds what the swarm needs to reach every
    node and to read every server-side process's CPU."""

    nodes: list[Server]
    redis: RedisProc | None
    data_root: Path

    @property
    def base(self) -> str:
        return self.nodes[0].base

    @property
    def origin(self) -> str:
        # Every node runs with the first node's public origin: the swarm
        # sends one Origin header to all of them, as a browser behind a
        # load balancer would.
        return self.nodes[0].origin

    @property
    def pid(self) -> int:
        return self.nodes[0].pid

    @property
    def log_path(self) -> Path:
        return self.nodes[0].log_path

    def log_paths(self) -> list[Path]:
        return [n.log_path for n in self.nodes]

    def plan_fields(self) -> dict[str, Any]:
        """``nodes`` (each node's URL and pid, n1 first) and ``pids`` (every
        server-side process the swarm reads the CPU of in each window)."""
        pids = [{"name": f"n{i}", "pid": n.pid} for i, n in enumerate(self.nodes, 1)]
        if self.redis is not None:
            pids.append({"name": "redis", "pid": self.redis.pid})
        return {"nodes": [{"name": f"n{i}", "base": n.base, "pid": n.pid}
                          for i, n in enumerate(self.nodes, 1)],
                "pids": pids}

    def leader(self) -> str:
        """The node id holding the leader lease (GET chat:live:leader), or ""."""
        if self.redis is None:
            return ""
        import redis

        try:
            with redis.Redis(host="127.0.0.1", port=self.redis.port, username=REDIS_USER,
                             password=self.redis.password, socket_timeout=5) as r:
                raw = r.get("chat:live:leader")
        except redis.RedisError:
            return ""
        return raw.decode().split(":", 1)[0] if raw else ""

    def stop(self) -> None:
        # SIGINT first (as systemd's stop): a node leaving on purpose tells the
        # others at once. Then Redis.
        for n in self.nodes:
            if n.proc.poll() is None:
                n.proc.send_signal(signal.SIGINT)
        for n in self.nodes:
            # Its GC and stall records are written on the way out: give the
            # clean shutdown time before Server.stop's SIGTERM and SIGKILL.
            try:
                n.proc.wait(20)
            except subprocess.TimeoutExpired:
                pass
            n.data_dir = None  # removed once, below
            n.stop()
        if self.redis is not None:
            self.redis.stop()
        shutil.rmtree(self.data_root, ignore_errors=True)

    def gc_stats(self) -> dict[str, Any]:
        return {f"n{i}": n.gc_stats() for i, n in enumerate(self.nodes, 1)}


def start(nodes: int, use_redis: bool, log_dir: Path, *, core: str | None,
          chat_overrides: dict[str, Any], accounts: tuple[int, int], root: Path,
          label: str) -> tuple[Cluster, list[dict[str, Any]]]:
    """``nodes`` chatserver processes (embedded live state when not
    ``use_redis``, which allows one node only), ready on /healthz and, on
    Redis, caught up with the log (/readyz)."""
    if nodes > 1 and not use_redis:
        raise ValueError("several nodes need the live state in Redis")
    log_dir.mkdir(parents=True, exist_ok=True)
    data_root = Path(tempfile.mkdtemp(prefix="chat-load-nodes-"))
    redis_proc = start_redis(core) if use_redis else None
    ports = [free_port() for _ in range(nodes)]
    origin = f"http://localhost:{ports[0]}"
    base_env = {**os.environ, "PYTHONPATH": str(root)}
    envs: list[dict[str, str]] = []
    for i, port in enumerate(ports, 1):
        env = {**base_env, **chat_env(data_root / f"n{i}", port, chat_overrides),
               "CHAT_PUBLIC_ORIGIN": origin,
               "LOADTEST_GC_STATS": str(log_dir / f"gc-{label}-n{i}.json")}
        if redis_proc is not None:
            env.update(CHAT_REDIS_URL=redis_proc.url, CHAT_NODE_ID=f"n{i}",
                       CHAT_SECRET_REDIS_PASSWORD=redis_proc.password)
        if os.environ.get(stalls.ENV) == "1":
            env[stalls.ENV] = str(log_dir / f"stalls-{label}-n{i}.json")
        envs.append(env)
    started: list[Server] = []
    try:
        created: list[dict[str, Any]] = []
        first = data_root / "n1"
        first.mkdir(parents=True)
        # The accounts, and with them the secrets file (generate_secrets), once.
        made = subprocess.run([PYTHON, "-m", "loadtests.accounts", *map(str, accounts)],
                              cwd=root, env=envs[0], capture_output=True, text=True, check=True)
        created = json.loads(made.stdout)
        for i in range(2, nodes + 1):
            shutil.copytree(first, data_root / f"n{i}")
        for i, (port, env) in enumerate(zip(ports, envs, strict=True), 1):
            log_path = log_dir / f"server-{label}-n{i}.log"
            with log_path.open("wb") as log:
                proc = subprocess.Popen(pinned([PYTHON, "-m", "loadtests.chat_server"], core),
                                        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
            server = Server("chat", port, proc, log_path, data_root / f"n{i}",
                            dict(chat_overrides), log_dir / f"gc-{label}-n{i}.json")
            started.append(server)
            _wait_healthy(server, timeout=60)
            if redis_proc is not None:
                _wait_ready(server)
    except BaseException:
        Cluster(started, redis_proc, data_root).stop()
        raise
    return Cluster(started, redis_proc, data_root), created


def _wait_ready(server: Server, timeout: float = 60.0) -> None:
    """Until /readyz answers 200: the node has caught up with the log."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"node exited: see {server.log_path}")
        try:
            with urllib.request.urlopen(server.base + "/readyz", timeout=2) as r:  # noqa: S310 (loopback)
                if r.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"node did not become ready: see {server.log_path}")


def process_cpu(pids: list[dict[str, Any]]) -> dict[str, float | None]:
    return {p["name"]: cpu_secs(int(p["pid"])) for p in pids}
