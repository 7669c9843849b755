"""A private ``redis-server`` per test: its own free port, its own temp
directory (``--dir``, and its log file in it), persistence off as
docs/operations.md requires (``save ""``, ``appendonly no``), optionally a
replica of another one (diskless sync and load, as a deployment's replica
runs). Ready when PING answers; stopped (and its directory removed) when the
``with`` block ends, also when the test fails.

The server's ACL user ``chatserver`` has exactly the rights the shipped
deploy/redis/users.acl gives it (the commands the live state may use, keys
``chat:*`` only; a built-in copy of that list if the file is missing): a
backend that needs anything else fails a test with NOPERM here instead of
failing only under a deployment's ACL. The ``default`` user stays open for the admin
helpers below (``CLIENT KILL``, ``CLIENT PAUSE``, ``INFO``); nothing but the
tests on this machine can reach the port. ``use_deploy_conf`` runs the
shipped deploy/redis/ files instead, when the repository has them.

``redis-server`` is Debian's ``/usr/bin/redis-server`` (``CHAT_TEST_REDIS_SERVER``
names another). Missing, the tests are skipped on a developer's machine and
FAIL under ``CI=true``: nothing may skip there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from chatserver.live.replicated import REDIS_COMMANDS, REDIS_KEYS
from chatserver.settings import REPO_ROOT
from tests.conftest import free_port

REDIS_SERVER = Path(os.environ.get("CHAT_TEST_REDIS_SERVER", "/usr/bin/redis-server"))
# A deployment's configuration, when the repository ships one; command-line
# options given after it override its port, dir and persistence.
DEPLOY_CONF = REPO_ROOT / "deploy" / "redis" / "redis.conf"
IN_CI = os.environ.get("CI", "").lower() == "true"
USER = "chatserver"
DEPLOY_ACL = DEPLOY_CONF.parent / "users.acl"
READY_BOUND_SECS = 30.0  # a hang guard: a loaded machine just takes longer


def chatserver_rules() -> list[str]:
    """The ACL rules of the ``chatserver`` user, without its password: from
    deploy/redis/users.acl's ``user chatserver`` line, else the built-in list."""
    if DEPLOY_ACL.is_file():
        for line in DEPLOY_ACL.read_text().splitlines():
            words = line.split()
            if words[:2] == ["user", USER]:
                return [w for w in words[2:] if not w.startswith(("#", ">", "<", "!"))]
    return ["on", "resetkeys", f"~{REDIS_KEYS}", "resetchannels",
            "-@all", *(f"+{c}" for c in REDIS_COMMANDS)]


def require_redis() -> None:
    """Skip locally, fail in CI, when there is no redis-server to start."""
    if REDIS_SERVER.is_file():
        return
    message = (f"redis-server not found at {REDIS_SERVER} (apt-get install redis-server, "
               "or set CHAT_TEST_REDIS_SERVER)")
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@dataclass
class RedisServer:
    """One running redis-server. ``password`` is the ``chatserver`` user's.

    With ``use_deploy_conf`` (and deploy/redis/redis.conf present) it runs the
    shipped configuration and ACL file (each user's password hash filled in,
    as an operator does), only its machine-specific lines overridden: the
    ``default`` user is then off and the admin helpers log in as ``admin``."""

    port: int
    dir: Path
    password: str = field(repr=False)
    replica_of: RedisServer | None = None
    use_deploy_conf: bool = False
    proc: subprocess.Popen[bytes] | None = None

    @property
    def deployed(self) -> bool:
        return self.use_deploy_conf and DEPLOY_CONF.is_file()

    @property
    def log(self) -> Path:
        return self.dir / "redis.log"

    @property
    def url(self) -> str:
        """What a node sets as ``redis_url`` (the password goes in its secrets)."""
        return f"redis://{USER}@127.0.0.1:{self.port}/0"

    def _password_of(self, user: str) -> str:
        return self.password if user == USER else f"{user}-{self.password}"

    def admin(self, decode: bool = True) -> redis.Redis:
        """A client for the admin helpers: ``default``, or the deployment's ``admin``."""
        user, password = ("admin", self._password_of("admin")) if self.deployed else (None, None)
        return redis.Redis(host="127.0.0.1", port=self.port, username=user, password=password,
                           socket_timeout=10, socket_connect_timeout=5, decode_responses=decode)

    def files(self) -> list[Path]:
        """Every file under the server's directory (its log included)."""
        return [f for f in self.dir.rglob("*") if f.is_file()]

    # --------------------------------------------------------------- lifecycle

    def argv(self) -> list[str]:
        argv = [str(REDIS_SERVER)]
        if self.deployed:
            # A copy in the server's own directory: CONFIG REWRITE (Sentinel
            # runs it on a failover) must not write into the repository.
            conf = self.dir / "redis.conf"
            conf.write_text(DEPLOY_CONF.read_text())
            argv += [str(conf), "--aclfile", str(self._acl_file()),
                     "--masteruser", "replica", "--masterauth", self._password_of("replica")]
        else:
            argv += ["--user", USER, f">{self.password}", *chatserver_rules()]
        argv += ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                 "--logfile", str(self.log), "--daemonize", "no", "--save", "",
                 "--appendonly", "no", "--maxmemory-policy", "noeviction"]
        if self.replica_of is not None:
            argv += ["--replicaof", "127.0.0.1", str(self.replica_of.port),
                     "--repl-diskless-load", "swapdb", "--repl-diskless-sync", "yes",
                     "--repl-diskless-sync-delay", "0"]
        return argv

    def _acl_file(self) -> Path:
        """deploy/redis/users.acl with every ``SHA256_OF_<USER>_PASSWORD``
        replaced by the hash of this server's password for that user."""
        path = self.dir / "users.acl"
        text = (DEPLOY_CONF.parent / "users.acl").read_text()
        for user in ("chatserver", "replica", "sentinel", "admin"):
            digest = hashlib.sha256(self._password_of(user).encode()).hexdigest()
            text = text.replace(f"SHA256_OF_{user.upper()}_PASSWORD", digest)
        path.write_text(text)
        return path

    def start(self) -> None:
        """Start (or start again, on the same port and directory) and wait
        until PING answers; a replica also until its link to the primary is up."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("already running")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._until_answering()

    def _until_answering(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + READY_BOUND_SECS
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                log = self.log.read_text(errors="replace") if self.log.exists() else ""
                raise AssertionError(f"redis-server exited ({self.proc.returncode}): "
                                     f"{err[-1000:]}{log[-2000:]}")
            try:
                with self.admin() as r:
                    if r.ping() and (self.replica_of is None
                                     or r.info("replication").get("master_link_status") == "up"):
                        return
            except redis.RedisError:
                pass  # not listening yet, or still loading
            if time.monotonic() > deadline:
                raise AssertionError(f"redis-server on port {self.port} did not answer PING")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM (a clean shutdown; with persistence off it writes nothing)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("redis-server did not stop on SIGTERM") from None
        finally:
            if self.proc.stderr:
                self.proc.stderr.close()

    def kill(self) -> None:
        """kill -9: the server vanishes as in a crash."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.kill()
        self.proc.wait(5)
        if self.proc.stderr:
            self.proc.stderr.close()

    # ------------------------------------------------------------------ faults

    def clients(self) -> list[dict[str, str]]:
        """``CLIENT LIST``: one dict per connection (id, name, user, flags, ...)."""
        with self.admin() as r:
            return list(r.client_list())

    def kill_clients(self, *, name_contains: str | None = None,
                     kind: str | None = None) -> int:
        """Drop connections of the ``chatserver`` user whose name contains
        ``name_contains`` (a node id), or all of that ``kind`` (``normal``,
        ``pubsub``, ``replica``) with ``CLIENT KILL TYPE``. Returns how many."""
        with self.admin() as r:
            if kind is not None:
                return int(r.execute_command("CLIENT", "KILL", "TYPE", kind, "USER", USER,
                                             "SKIPME", "yes"))
            killed = 0
            for client in r.client_list():
                if client.get("user") == USER and name_contains and \
                        name_contains in client.get("name", ""):
                    killed += int(r.execute_command("CLIENT", "KILL", "ID", client["id"]))
            return killed

    def pause(self, millis: int = 2000) -> None:
        """``CLIENT PAUSE``: every client's commands wait ``millis`` ms."""
        with self.admin() as r:
            r.execute_command("CLIENT", "PAUSE", str(millis), "ALL")


@contextmanager
def redis_server(*, replica_of: RedisServer | None = None,
                 use_deploy_conf: bool = False, password: str | None = None
                 ) -> Iterator[RedisServer]:
    """A started redis-server in a fresh temp directory; stopped and removed
    afterwards. A replica gets its primary's password unless one is given."""
    require_redis()
    root = Path(tempfile.mkdtemp(prefix="chat-redis-"))
    if password is None:
        password = replica_of.password if replica_of else "test-redis-" + os.urandom(8).hex()
    server = RedisServer(port=free_port(), dir=root, password=password,
                         replica_of=replica_of, use_deploy_conf=use_deploy_conf)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)
