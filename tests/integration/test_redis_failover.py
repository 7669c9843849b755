"""Redis failover under Sentinel (docs/operations.md, "Redis"): a primary, a
replica and three Sentinels from the shipped deploy/redis/ files (ACL users
included), two ``chatserver serve`` nodes that know only the Sentinels, and
a youth and a counsellor sending to each other without pause through the
load balancer. The primary is killed (``kill -9``), or moved by
``SENTINEL FAILOVER``; the Sentinels promote the replica and the nodes find
the new primary by themselves: no restart, no changed setting.

With ``redis_wait_replica_ms`` on, every message either side was told was
sent arrives exactly once and in order. Without it, the last appends before
the kill may not have reached the replica: the test reports what was lost
(``-s`` shows it) and checks only that the service came back.

The window (the longest pause in either side's accepted sends from the
failure on) is printed; docs/operations.md records what it was. The old primary is then
started again, empty (persistence is off): Sentinel makes it a replica of the
new primary, and it copies the live state instead of wiping it.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from chatserver.settings import REPO_ROOT
from tests.conftest import free_port
from tests.helpers import server_process
from tests.helpers.cluster import Cluster, cluster
from tests.helpers.conversation_load import (
    DELIVERY_SECS,
    Talk,
    close_talks,
    finish,
    more_sent,
    start_talks,
)
from tests.helpers.redis_server import REDIS_SERVER, RedisServer, redis_server
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.redis, pytest.mark.slow]

SENTINEL_CONF = REPO_ROOT / "deploy" / "redis" / "sentinel.conf"
SERVICE = "chat"  # the master name in sentinel.conf
# Hang guards only: the shipped Sentinels declare the primary down after 5 s,
# a loaded machine may take much longer to elect and promote.
QUORUM_SECS = 60.0
FAILOVER_SECS = 120.0
REJOIN_SECS = 120.0


@contextmanager
def sentinels(primary: RedisServer, root: Path, count: int = 3) -> Iterator[list[int]]:
    """``count`` Sentinels from deploy/redis/sentinel.conf watching
    ``primary`` (its own port, directory and log each; the sentinel ACL
    user's password filled in as an operator does); stopped afterwards."""
    procs: list[subprocess.Popen[bytes]] = []
    ports = [free_port() for _ in range(count)]
    try:
        for n, port in enumerate(ports):
            workdir = root / f"sentinel{n}"
            workdir.mkdir(parents=True)
            conf = SENTINEL_CONF.read_text()
            for old, new in (
                    ("10.0.0.21 6379", f"127.0.0.1 {primary.port}"),
                    ("SENTINEL_PASSWORD", f"sentinel-{primary.password}"),
                    ("bind 127.0.0.1 -::1", "bind 127.0.0.1"),
                    ("port 26379", f"port {port}"),
                    ("logfile /var/log/redis/redis-sentinel.log",
                     f"logfile {workdir / 'sentinel.log'}"),
                    ("dir /var/lib/redis", f"dir {workdir}")):
                assert old in conf, f"sentinel.conf no longer has {old!r}"
                conf = conf.replace(old, new)
            (workdir / "sentinel.conf").write_text(conf)
            procs.append(subprocess.Popen(
                [str(REDIS_SERVER), str(workdir / "sentinel.conf"), "--sentinel"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        yield ports
    finally:
        server_process.terminate(*procs)


def _ask(port: int, *command: str) -> object:
    with redis.Redis(host="127.0.0.1", port=port, socket_timeout=5,
                     decode_responses=True) as sentinel:
        try:
            return sentinel.execute_command(*command)
        except redis.RedisError as exc:
            return str(exc)


def _primary_port(sentinel_ports: list[int]) -> set[int]:
    """Where each Sentinel says the primary is (one port when they agree)."""
    found = set()
    for port in sentinel_ports:
        got = _ask(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        if isinstance(got, list | tuple) and len(got) == 2:
            found.add(int(got[1]))
    return found


def _node_connections(server: RedisServer) -> set[str]:
    """The nodes (by client name) with a connection to ``server``."""
    try:
        return {c["name"].removeprefix("chatserver-") for c in server.clients()
                if c.get("name", "").startswith("chatserver-")}
    except redis.RedisError:
        return set()


def _role(server: RedisServer) -> dict[str, object]:
    try:
        with server.admin() as admin:
            return dict(admin.info("replication"))
    except redis.RedisError:
        return {}


class SendTimes:
    """When each side had a send accepted (polled every 20 ms), to report the
    longest pause a failover caused."""

    def __init__(self, talk: Talk) -> None:
        self.talk = talk
        self.times: dict[str, list[float]] = {side.tag: [] for side in talk.sides}
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        counts = {side.tag: len(side.sent) for side in self.talk.sides}
        while True:
            for side in self.talk.sides:
                if len(side.sent) > counts[side.tag]:
                    counts[side.tag] = len(side.sent)
                    self.times[side.tag].append(time.monotonic())
            await asyncio.sleep(0.02)

    def longest_pause(self, since: float) -> dict[str, float]:
        """Per side, the longest time without an accepted send after ``since``."""
        pauses = {}
        for tag, times in self.times.items():
            marks = [since, *(t for t in times if t > since)]
            pauses[tag] = max(b - a for a, b in itertools.pairwise(marks))
        return pauses

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@pytest.mark.parametrize(("how", "wait_ms"), [("kill", 500), ("kill", 0), ("command", 500)],
                         ids=["kill-wait-replica", "kill-no-wait", "sentinel-failover"])
async def test_nodes_follow_the_new_primary_after_a_failover(
        tmp_path: Path, database_url: str, how: str, wait_ms: int) -> None:
    """``kill``: the primary crashes (``kill -9``); ``command``: an operator
    moves the primary (``SENTINEL FAILOVER``), the old one stays up and is
    made a replica at once."""
    with redis_server(use_deploy_conf=True) as primary, \
            redis_server(replica_of=primary, use_deploy_conf=True) as replica, \
            sentinels(primary, tmp_path / "sentinels") as ports:
        await eventually(lambda: all(
            str(_ask(p, "SENTINEL", "CKQUORUM", SERVICE)).startswith("OK 3 usable")
            for p in ports), QUORUM_SECS, every=0.1)
        # The Sentinels know the replica (a failover needs one to promote).
        await eventually(lambda: all(
            isinstance(r := _ask(p, "SENTINEL", "REPLICAS", SERVICE), list) and len(r) == 1
            for p in ports), QUORUM_SECS, every=0.1)
        sentinel_list = ",".join(f"127.0.0.1:{p}" for p in ports)
        async with cluster(tmp_path / "cluster", primary, database_url, nodes=2,
                           redis_sentinels=sentinel_list, redis_service=SERVICE,
                           redis_wait_replica_ms=wait_ms) as c:
            assert _node_connections(primary) == {"n1", "n2"}
            talks = await start_talks(c, [("n1", "n2")])
            try:
                await more_sent(c, talks, 10)
                sends = SendTimes(talks[0])
                failed_at = time.monotonic()
                if how == "kill":
                    primary.kill()
                else:
                    assert _ask(ports[0], "SENTINEL", "FAILOVER", SERVICE) == "OK"
                # The Sentinels promote the replica, and both nodes go there by
                # themselves.
                await eventually(lambda: _primary_port(ports) == {replica.port},
                                 FAILOVER_SECS, every=0.1)
                await eventually(lambda: _node_connections(replica) == {"n1", "n2"},
                                 FAILOVER_SECS, every=0.1)
                await more_sent(c, talks, 10)
                window = sends.longest_pause(failed_at)
                await sends.close()
                print(f"failover window ({how}, WAIT {wait_ms} ms): longest pause in "
                      "accepted sends " + ", ".join(f"{tag} {secs:.1f} s"
                                                     for tag, secs in window.items()))
                await _old_primary_rejoins_as_replica(c, primary, replica)
                await more_sent(c, talks, 10)
                if wait_ms:
                    await finish(c, talks)
                else:
                    await _report_losses(c, talks[0])
                assert all(s == 200 for s in await asyncio.gather(
                    *(c.readyz(n) for n in c.nodes)))
            finally:
                await close_talks(talks)


async def _old_primary_rejoins_as_replica(c: Cluster, old: RedisServer,
                                          new: RedisServer) -> None:
    """Started again, empty, the old primary is made a replica of the new one
    by the Sentinels and copies the live state; the new primary keeps it."""
    with new.admin() as admin:
        length = int(admin.xlen("chat:live:log"))
    assert length > 0
    if old.proc is None or old.proc.poll() is not None:
        old.start()
    await eventually(lambda: _role(old).get("role") == "slave"
                     and _role(old).get("master_port") == new.port
                     and _role(old).get("master_link_status") == "up",
                     REJOIN_SECS, every=0.2)
    with new.admin() as admin:
        assert int(admin.xlen("chat:live:log")) >= length  # not wiped by the rejoin
    with old.admin() as admin:
        await eventually(lambda: int(admin.xlen("chat:live:log")) >= length,
                         REJOIN_SECS, every=0.1)
    # The nodes stay on the primary (after SENTINEL FAILOVER the Sentinels
    # closed their connections to the demoted one).
    await eventually(lambda: _node_connections(old) == set(), REJOIN_SECS, every=0.1)


async def _report_losses(c: Cluster, talk: Talk) -> None:
    """Without WAIT: what the failover cost, printed; the chat carries on."""
    await talk.stop()
    try:
        await eventually(talk.complete, DELIVERY_SECS, every=0.05)
    except AssertionError:
        pass  # counted below
    problems = talk.problems()
    print("without WAIT, after a kill -9 of the primary:", problems or "nothing lost")
    assert all(len(side.sent) > 30 for side in talk.sides), talk.summary()
