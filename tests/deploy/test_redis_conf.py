"""deploy/redis/: a private redis-server started from the shipped files
keeps nothing on disk, and its ACL users can do what chatserver, replication
and Sentinel need and nothing else (docs/operations.md, "Several nodes")."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest
import redis

from chatserver.live.replicated import REDIS_COMMANDS, REDIS_KEYS
from tests.conftest import free_port
from tests.helpers import server_process
from tests.helpers.deploy import (
    DEPLOY,
    REDIS_PASSWORDS,
    redis_client,
    redis_instance,
    require_tool,
)
from tests.helpers.waiting import eventually

REDIS = DEPLOY / "redis"
# The commands the contract lets the chatserver user run (docs/operations.md).
# How Redis words an ACL refusal (a script's call is worded its own way).
REFUSED = r"NOPERM|permission|can't run this command"
CHAT_COMMANDS = set(REDIS_COMMANDS)  # what chatserver/live/ says the nodes use


def _settings(conf: Path) -> list[str]:
    return [line for line in conf.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def test_replica_conf_is_the_primary_conf_plus_replicaof() -> None:
    primary, replica = _settings(REDIS / "redis.conf"), _settings(REDIS / "replica.conf")
    assert replica[:-1] == primary
    assert replica[-1].startswith("replicaof ")


def test_chatserver_user_is_limited_to_its_commands_and_keys(tmp_path: Path) -> None:
    port = free_port()
    with redis_instance(REDIS / "redis.conf", tmp_path / "primary", port):
        admin = redis_client(port, "admin")
        # Persistence off, as chatserver demands, and the rest of the promises.
        assert admin.config_get("save") == {"save": ""}
        assert admin.config_get("appendonly") == {"appendonly": "no"}
        assert admin.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert admin.config_get("repl-diskless-sync") == {"repl-diskless-sync": "yes"}
        assert admin.config_get("protected-mode") == {"protected-mode": "yes"}
        persistence = admin.info("persistence")
        assert persistence["aof_enabled"] == 0
        # The default user is off: no command without logging in.
        anonymous = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        anonymous.close()

        chat = redis_client(port, "chatserver")
        assert chat.ping()
        assert "redis_version" in chat.info()
        chat.client_setname("node-a")
        # HELLO with AUTH on a fresh connection, as a client opens one.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            words = [b"HELLO", b"3", b"AUTH", b"chatserver",
                     REDIS_PASSWORDS["chatserver"].encode()]
            raw.sendall(b"*%d\r\n" % len(words)
                        + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words))
            assert raw.recv(4096).startswith(b"%")  # a RESP3 map: server, version, …
        entry = chat.xadd("chat:live:log", {"c": "x"})
        assert chat.xlen("chat:live:log") == 1
        assert chat.xrange("chat:live:log")[0][0] == entry
        assert chat.xrevrange("chat:live:log")[0][0] == entry
        assert chat.xread({"chat:live:log": "0"}, count=1)
        chat.xtrim("chat:live:log", maxlen=10)
        assert chat.set("chat:live:leader", "a", nx=True, px=5000)
        assert chat.get("chat:live:leader") == "a"
        assert chat.pexpire("chat:live:leader", 10000)
        assert chat.exists("chat:live:leader") == 1
        assert chat.sadd("chat:live:nodes", "a") == 1
        assert chat.smembers("chat:live:nodes") == {"a"}
        assert chat.srem("chat:live:nodes", "a") == 1
        script = "return redis.call('GET', KEYS[1])"
        assert chat.eval(script, 1, "chat:live:leader") == "a"
        sha = chat.script_load(script)
        assert chat.evalsha(sha, 1, "chat:live:leader") == "a"
        assert chat.delete("chat:live:leader") == 1

        # Nothing else: no wiping, no reconfiguring, no keys outside chat:*.
        for refused in (lambda: chat.flushall(), lambda: chat.flushdb(),
                        lambda: chat.config_get("save"), lambda: chat.config_set("save", "1 1"),
                        lambda: chat.keys("*"), lambda: chat.scan(),
                        lambda: chat.set("other", "x"), lambda: chat.get("other"),
                        lambda: chat.eval(script, 1, "other"),
                        lambda: chat.eval("return redis.call('FLUSHALL')", 0),
                        lambda: chat.execute_command("MONITOR"),
                        lambda: chat.execute_command("SAVE"),
                        lambda: chat.execute_command("REPLICAOF", "NO", "ONE"),
                        lambda: chat.execute_command("ACL", "LIST"),
                        lambda: chat.publish("chat:x", "y")):
            with pytest.raises(redis.ResponseError, match=REFUSED):
                refused()
        # The ACL file lists exactly the contract's commands for the user.
        rules = next(line.split() for line in admin.acl_list()
                     if line.startswith("user chatserver "))
        assert {r[1:] for r in rules if r.startswith("+")} == CHAT_COMMANDS
        assert [r for r in rules if r.startswith(("~", "%", "&"))] == [f"~{REDIS_KEYS}"]
        assert "-@all" in rules
        # The admin may not write the data to disk or wipe it either.
        for refused in (lambda: admin.execute_command("SAVE"),
                        lambda: admin.execute_command("BGSAVE"), lambda: admin.flushall()):
            with pytest.raises(redis.ResponseError, match=REFUSED):
                refused()
        admin.close()
        chat.close()


def test_unedited_acl_file_stops_redis(tmp_path: Path) -> None:
    """A placeholder left in users.acl is not a password: redis-server refuses
    to start rather than run with a user nobody can log in as."""
    binary = require_tool("redis-server", "apt-get install redis-server")
    out = subprocess.run(
        [binary, str(REDIS / "redis.conf"), "--port", str(free_port()), "--bind", "127.0.0.1",
         "--dir", str(tmp_path), "--logfile", "", "--aclfile", str(REDIS / "users.acl")],
        capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "users.acl" in out.stdout + out.stderr


async def test_replica_and_sentinels_log_in_with_their_own_users(tmp_path: Path) -> None:
    primary_port, replica_port = free_port(), free_port()
    with redis_instance(REDIS / "redis.conf", tmp_path / "primary", primary_port), \
            redis_instance(REDIS / "replica.conf", tmp_path / "replica", replica_port,
                           {"replicaof": f"127.0.0.1 {primary_port}"}):
        replica = redis_client(replica_port, "admin")
        assert replica.config_get("repl-diskless-load") == {"repl-diskless-load": "swapdb"}
        await eventually(lambda: replica.info("replication").get("master_link_status") == "up",
                         60, 0.1)
        redis_client(primary_port, "chatserver").set("chat:probe", "1")
        await eventually(lambda: replica.get("chat:probe") == "1", 60, 0.1)
        # Nothing on disk on either side: a diskless full sync writes no RDB.
        assert not list((tmp_path / "primary").glob("*.rdb"))
        assert not list((tmp_path / "replica").glob("*.rdb"))

        sentinels = [_sentinel(tmp_path / f"sentinel{i}", primary_port) for i in range(3)]
        try:
            first = redis.Redis(host="127.0.0.1", port=sentinels[0][1], socket_timeout=10,
                                decode_responses=True)
            await eventually(lambda: _ckquorum(first).startswith("OK 3 usable Sentinels"),
                             60, 0.1)
            master = first.sentinel_master("chat")
            assert master["quorum"] == 2
            assert master["num-slaves"] == 1
            first.close()
        finally:
            server_process.terminate(*(proc for proc, _ in sentinels))
        replica.close()


def _ckquorum(sentinel: redis.Redis) -> str:
    try:
        return str(sentinel.execute_command("SENTINEL", "CKQUORUM", "chat"))
    except redis.ResponseError as exc:
        return str(exc)


def _sentinel(workdir: Path, primary_port: int) -> tuple[subprocess.Popen[bytes], int]:
    """A Sentinel from deploy/redis/sentinel.conf, watching the test's primary."""
    binary = require_tool("redis-server", "apt-get install redis-server")
    workdir.mkdir(parents=True)
    port = free_port()
    conf = (REDIS / "sentinel.conf").read_text()
    conf = conf.replace("10.0.0.21 6379", f"127.0.0.1 {primary_port}")
    conf = conf.replace("SENTINEL_PASSWORD", REDIS_PASSWORDS["sentinel"])
    conf = conf.replace("bind 127.0.0.1 -::1", "bind 127.0.0.1")
    conf = conf.replace("port 26379", f"port {port}")
    conf = conf.replace("logfile /var/log/redis/redis-sentinel.log",
                        f"logfile {workdir / 'sentinel.log'}")
    conf = conf.replace("dir /var/lib/redis", f"dir {workdir}")
    path = workdir / "sentinel.conf"
    path.write_text(conf)
    proc = subprocess.Popen([binary, str(path), "--sentinel"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    return proc, port
