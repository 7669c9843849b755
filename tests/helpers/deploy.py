"""What the tests of deploy/ share: the files, the tools they run, and a
private redis-server made from the shipped configuration.

A missing tool skips on a developer's machine and FAILS under ``CI=true``
(nothing may skip there; scripts/setup.sh installs what the suite needs)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from chatserver.settings import REPO_ROOT
from tests.helpers import server_process

DEPLOY = REPO_ROOT / "deploy"
IN_CI = os.environ.get("CI", "").lower() == "true"
# The test's passwords for the ACL users of deploy/redis/users.acl.
REDIS_PASSWORDS = {"chatserver": "chat-pw-for-tests", "replica": "replica-pw-for-tests",
                   "sentinel": "sentinel-pw-for-tests", "admin": "admin-pw-for-tests"}


def require_tool(name: str, hint: str) -> str:
    """The path of ``name``; skips (fails under CI=true) if it is missing."""
    path = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/sbin") / name) if p.is_file()), None)
    if path is None:
        message = f"{name} is not installed ({hint})"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def acl_file(dest: Path) -> Path:
    """deploy/redis/users.acl with each password placeholder replaced by the
    SHA-256 of the test's password for that user, as the operator does."""
    text = (DEPLOY / "redis" / "users.acl").read_text()
    for user, password in REDIS_PASSWORDS.items():
        digest = hashlib.sha256(password.encode()).hexdigest()
        text = text.replace(f"SHA256_OF_{user.upper()}_PASSWORD", digest)
    dest.write_text(text)
    return dest


def redis_client(port: int, user: str) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, username=user,
                       password=REDIS_PASSWORDS[user], socket_timeout=10,
                       decode_responses=True)


@contextmanager
def redis_instance(conf: Path, workdir: Path, port: int,
                   overrides: Mapping[str, str] | None = None) -> Iterator[Path]:
    """redis-server on ``conf`` with the machine-specific lines (port, bind,
    dir, log file, ACL file, the replica password) pointed at ``workdir``;
    yields the log file once the admin user's PING answers."""
    binary = require_tool("redis-server", "apt-get install redis-server")
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "redis.log"
    args = {"port": str(port), "bind": "127.0.0.1", "dir": str(workdir),
            "logfile": str(log), "aclfile": str(acl_file(workdir / "users.acl")),
            "masterauth": REDIS_PASSWORDS["replica"], "daemonize": "no",
            **(overrides or {})}
    # A copy in workdir: CONFIG REWRITE (Sentinel runs it on a failover)
    # must not write into the repository's file.
    copy = workdir / conf.name
    copy.write_text(conf.read_text())
    cmd = [binary, str(copy)]
    for key, value in args.items():
        cmd += [f"--{key}", *value.split(" ")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        client = redis_client(port, "admin")
        deadline = time.monotonic() + 60  # a hang guard only
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"redis-server exited: {_tail(log)}")
            try:
                if client.ping():
                    break
            except redis.exceptions.MasterDownError:
                break  # a replica answers, but serves nothing until it has synced
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise AssertionError("redis-server did not answer") from None
                time.sleep(0.05)
        client.close()
        yield log
    finally:
        server_process.terminate(proc)


def _tail(log: Path) -> str:
    return log.read_text()[-2000:] if log.exists() else "(no log)"
