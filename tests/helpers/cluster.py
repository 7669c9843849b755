"""Several real ``chatserver serve`` processes as one deployment: one Redis
(the live state's log, tests/helpers/redis_server.py), one PostgreSQL
database (a file of SQLite cannot be shared by processes on several
machines; tests/helpers/postgres.py), the same secrets on every node, each
node its own ``node_id`` (n1..nN), port, data directory and temp directory,
and the load balancer of tests/helpers/lb_proxy.py in front. Clients connect
through the load balancer only, as browsers do; the tests reach a node
directly only for ``/readyz``.

A node is stopped with SIGINT (as systemd's stop), killed with SIGKILL (a
crash), and started again on the same port. Each start writes its own log
file, so the canary checks read every line any node ever wrote.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from chatserver.client.reference import ReferenceClient, StaffLogin, staff_login
from chatserver.domain import auth
from chatserver.domain.audit import AuditLog
from chatserver.domain.clock import SystemClock
from chatserver.settings import REPO_ROOT, SECRET_BYTES, SECRET_NAMES, load_settings
from chatserver.storage import opened
from tests.conftest import StaffCreds, free_port
from tests.helpers import server_process
from tests.helpers.lb_proxy import LbProxy
from tests.helpers.redis_server import RedisServer

TEST_CONFIG = REPO_ROOT / "config" / "test.toml"
# What every node of a test cluster runs with beyond config/test.toml. The
# rate limits are raised because every client of a test comes from one
# address and sends faster than a person: the tests count lost and
# duplicated messages, not refusals (tests/integration/test_limits.py has those).
CLUSTER_SETTINGS = {
    "client_addr_header": "X-Forwarded-For",  # the load balancer appends it (one hop)
    "rate_starts_per_hour": "10000",
    "rate_logins_per_hour": "10000",
    "rate_send_per_min": "60000",
    "rate_send_burst": "1000",
    "rate_other_per_min": "60000",
    "rate_other_burst": "1000",
    # A node stopped with SIGINT keeps each open WebSocket until engine.io's
    # ping times it out (ping_interval + ping_timeout: 45 s by default, also
    # for a single node); shorter here so that a rolling restart takes seconds.
    "ping_interval_secs": "5",
    "ping_timeout_secs": "5",
    # config/test.toml keeps a dropped seat 5 s; a client of a node that is
    # stopping notices only when that ping runs out (10 s), and one of a node
    # declared lost must find its seat kept when it resumes elsewhere, as in
    # production (120 s).
    "grace_secs": "60",
    # Every test's Redis is new and no node holds a state yet: no need to
    # wait for nodes that might (docs/design/live-state.md).
    "redis_empty_wait_secs": "0",
}
# A hang guard for a node's clean shutdown: past engine.io's ping (10 s here)
# and a live-state call's wait for its own command (COMMAND_WAIT_SECS).
STOP_BOUND_SECS = 60.0
# A call on a transport whose node was killed gets no ack and python-socketio
# waits the whole timeout even after the drop: a shorter one lets the tests'
# clients notice sooner. A late ack is then taken as a failure and the send
# retried, which the tests' books handle (tests/helpers/conversation_load.py).
CALL_TIMEOUT_SECS = 5.0


@dataclass
class Node:
    id: str
    port: int
    root: Path  # var/ (data dir), tmp/ (TMPDIR) and the log of each start
    env: dict[str, str] = field(repr=False)
    proc: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)
    stop_secs: list[float] = field(default_factory=list)  # how long each clean stop took

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.logs if p.exists())


class Cluster:
    def __init__(self, root: Path, node_ids: list[str], redis: RedisServer,
                 database_url: str, overrides: Mapping[str, Any]) -> None:
        self.root = root
        self.redis = redis
        self.database_url = database_url
        ports = {nid: free_port() for nid in node_ids}
        self.proxy = LbProxy(ports)
        self.nodes: dict[str, Node] = {}
        self._secrets = {
            "CHAT_SECRET_" + name.upper():
                base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")
            for name in SECRET_NAMES}
        self._overrides = {"CHAT_" + k.upper(): str(v)
                           for k, v in {**CLUSTER_SETTINGS, **overrides}.items()}
        self._ports = ports
        self._staff = 0
        self.clients: list[ReferenceClient] = []

    @property
    def url(self) -> str:
        """The load balancer: the only address clients use."""
        return self.proxy.url

    def _env(self, node_id: str, root: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
        env.update(self._secrets)
        env.update(
            CHAT_CONFIG=str(TEST_CONFIG), CHAT_DATA_DIR=str(root / "var"),
            CHAT_HOST="127.0.0.1", CHAT_PORT=str(self._ports[node_id]),
            CHAT_PUBLIC_ORIGIN=self.proxy.url, CHAT_DATABASE_URL=self.database_url,
            CHAT_REDIS_URL=self.redis.url, CHAT_SECRET_REDIS_PASSWORD=self.redis.password,
            CHAT_NODE_ID=node_id, CHAT_GENERATE_SECRETS="false", TMPDIR=str(root / "tmp"))
        env.update(self._overrides)
        return env

    def _make_nodes(self) -> None:
        for node_id, port in self._ports.items():
            root = self.root / node_id
            (root / "tmp").mkdir(parents=True)
            self.nodes[node_id] = Node(node_id, port, root, self._env(node_id, root))

    # ------------------------------------------------------------------ nodes

    def launch(self, node_id: str) -> Node:
        """Start a node's process (not waiting for it)."""
        node = self.nodes[node_id]
        if node.running:
            raise RuntimeError(f"{node_id} is running")
        log = node.root / f"serve-{len(node.logs) + 1}.log"
        node.logs.append(log)
        node.proc = server_process.serve(node.env, log)
        return node

    async def until_ready(self, node_id: str, secs: float = 90.0) -> None:
        """Until the node's /readyz says 200 (database and live state caught up)."""
        node = self.nodes[node_id]
        assert node.proc is not None and node.logs
        await asyncio.to_thread(server_process.wait_ready, node.url, node.proc, node.logs[-1],
                                secs)

    async def start(self, node_id: str) -> None:
        self.launch(node_id)
        await self.until_ready(node_id)

    async def stop(self, node_id: str) -> None:
        """SIGINT and wait for a clean exit (failing the test if it hangs)."""
        node = self.nodes[node_id]
        if node.proc is not None:
            started = time.monotonic()
            try:
                await asyncio.to_thread(server_process.stop, node.proc, STOP_BOUND_SECS)
                node.stop_secs.append(time.monotonic() - started)
            except AssertionError as exc:
                tail = "\n".join(node.log_text().splitlines()[-30:])
                raise AssertionError(f"{node_id}: {exc}; its log ends:\n{tail}") from None

    async def kill(self, node_id: str) -> None:
        """kill -9: the process and its sockets vanish as in a crash."""
        node = self.nodes[node_id]
        if node.proc is not None and node.proc.poll() is None:
            node.proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(node.proc.wait, 10)

    async def restart(self, node_id: str) -> None:
        await self.stop(node_id)
        await self.start(node_id)

    async def readyz(self, node_id: str) -> int:
        """The status of the node's /readyz (0 if it does not answer)."""
        try:
            async with aiohttp.ClientSession() as http, http.get(
                    self.nodes[node_id].url + "/readyz",
                    timeout=aiohttp.ClientTimeout(total=10)) as resp:
                return resp.status
        except (aiohttp.ClientError, TimeoutError):
            return 0

    def logs(self) -> dict[str, str]:
        return {node_id: node.log_text() for node_id, node in self.nodes.items()}

    def log_excerpt(self, lines: int = 40) -> str:
        """The warnings and errors of every node with their tracebacks, the
        last ``lines`` lines each (for a failing assertion's message)."""
        parts = []
        for node_id, text in self.logs().items():
            worth: list[str] = []
            keep = False
            for line in text.splitlines():
                stamped = line[:4].isdigit()  # "2026-..." starts a record
                if stamped:
                    keep = " WARNING " in line or " ERROR " in line or " CRITICAL " in line
                if keep:
                    worth.append(line)
            parts.append(f"--- {node_id}\n" + "\n".join(worth[-lines:]))
        return "\n".join(parts)

    def files(self) -> list[Path]:
        """Every file the nodes wrote: logs, data dirs, temp dirs."""
        return [f for node in self.nodes.values() for f in node.root.rglob("*") if f.is_file()]

    # ----------------------------------------------------------------- people

    async def add_staff(self, n: int = 1, role: str = "counsellor") -> list[StaffCreds]:
        """``n`` new accounts on the shared database, made as ``chatserver
        staff add`` makes them (the same function, in this process: twenty
        CLI processes would take most of a test's time)."""
        settings = load_settings(env=next(iter(self.nodes.values())).env)
        made = []
        async with opened(settings) as store:
            audit = AuditLog(store, SystemClock(), settings.require_secrets().audit_key)
            for _ in range(n):
                self._staff += 1
                username, password = f"{role}{self._staff}", f"correct horse battery {self._staff}"
                created = await auth.add_account(
                    username, password, role=role, alias=f"Alias {self._staff}",
                    capacity=settings.default_capacity, actor="test", store=store, audit=audit,
                    clock=SystemClock(), settings=settings,
                    guard=auth.LoginGuard(settings.password_profile))
                made.append(StaffCreds(username, password, created.totp_seed))
        return made

    async def login(self, creds: StaffCreds, node: str | None = None) -> StaffLogin:
        if node is not None:
            self.proxy.pin_next(node)
        return await staff_login(self.url, creds.username, creds.password, creds.code())

    async def youth(self, node: str | None = None,
                    client: ReferenceClient | None = None) -> ReferenceClient:
        """A youth connected through the load balancer (to ``node`` if given)."""
        client = client or ReferenceClient()
        client.call_timeout = CALL_TIMEOUT_SECS
        self.clients.append(client)
        if node is not None:
            self.proxy.pin_next(node)
        await client.connect(self.url, "/youth")
        return client

    async def counsellor(self, node: str | None = None, *, creds: StaffCreds | None = None,
                         duty: bool = True, client: ReferenceClient | None = None
                         ) -> tuple[ReferenceClient, StaffLogin]:
        """A counsellor logged in and connected (to ``node`` if given), on duty.
        Returns the login too: a reconnect sends its cookie again."""
        creds = creds or (await self.add_staff())[0]
        login = await self.login(creds, node)
        client = client or ReferenceClient()
        client.call_timeout = CALL_TIMEOUT_SECS
        self.clients.append(client)
        if node is not None:
            self.proxy.pin_next(node)
        await client.connect(self.url, "/staff", headers={"Cookie": login.cookie})
        if duty:
            await client.duty(True)
        return client, login

    async def chat(self, youth_node: str | None = None, counsellor_node: str | None = None
                   ) -> tuple[ReferenceClient, ReferenceClient, StaffLogin, str]:
        """A youth and a counsellor in one active conversation at epoch 1:
        (youth, counsellor, the counsellor's login, conversation id)."""
        counsellor, login = await self.counsellor(counsellor_node)
        youth = await self.youth(youth_node)
        conv = (await youth.start())["conversation"]
        await counsellor.claim(conv)
        await youth.wait_for(lambda: youth.conversations[conv].epoch == 1, 15)
        return youth, counsellor, login, conv

    async def close_clients(self) -> None:
        for client in self.clients:
            await client.close()
        self.clients.clear()


def node_of(client: ReferenceClient) -> str:
    """The node holding ``client``'s connection: its session id's prefix."""
    sid = client.sid
    if sid is None or "." not in sid:
        raise AssertionError(f"no node-named session id: {sid!r}")
    return sid.split(".", 1)[0]


@asynccontextmanager
async def cluster(root: Path, redis: RedisServer, database_url: str, nodes: int = 3,
                  **settings: Any) -> AsyncIterator[Cluster]:
    """``nodes`` started and ready behind the load balancer; ``settings``
    override config/test.toml on every node. Every node is stopped afterwards
    (SIGINT, so their logs are complete) and every client closed."""
    c = Cluster(root, [f"n{i}" for i in range(1, nodes + 1)], redis, database_url, settings)
    await c.proxy.start()
    c._make_nodes()
    try:
        for node_id in c.nodes:
            c.launch(node_id)
        await asyncio.gather(*(c.until_ready(node_id) for node_id in c.nodes))
        yield c
    finally:
        await c.close_clients()
        hung: list[AssertionError] = []
        for node_id in c.nodes:
            try:
                await c.stop(node_id)
            except AssertionError as exc:  # the others are still stopped
                hung.append(exc)
        await c.proxy.close()
        if hung:
            raise hung[0]
