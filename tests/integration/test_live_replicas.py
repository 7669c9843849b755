"""The replicated live state's own promises, on a real private redis-server:
a node that starts late (from a snapshot and the log after it) holds the same
state as the others; staff sessions reach every node; a secret sent to
another node's connection crosses Redis sealed; a Redis that writes to disk
is refused. The domain's rules through the log are the domain tests' own
(tests/unit/conftest.py, ``make_chat``)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from chatserver.crypto.tokens import b64e
from chatserver.domain.clock import FakeClock, SystemClock
from chatserver.domain.conversations import STAFF_NS, YOUTH_NS, ChatService, StartProfile
from chatserver.domain.events import Conn, Emit, Outcome
from chatserver.domain.model import StaffRef
from chatserver.domain.sessions import SessionStore
from chatserver.domain.stats import StatsCounter
from chatserver.errors import LiveUnavailable
from chatserver.live import codec
from chatserver.live.replicated import DIRECT, LOG, SNAPSHOT, ReplicatedLive
from chatserver.settings import Settings
from chatserver.storage.base import StaffRecord
from tests.helpers.redis_server import RedisServer, redis_server
from tests.helpers.replicated_chat import ReplicatedChat, state_of
from tests.helpers.waiting import eventually


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with redis_server() as s:
        yield s


def _pk() -> str:
    return b64e(os.urandom(32))


def _node(settings: Settings, server: RedisServer, node: str) -> ReplicatedLive:
    secrets = dataclasses.replace(settings.require_secrets(), redis_password=server.password)
    s = dataclasses.replace(settings, redis_url=server.url, node_id=node, secrets=secrets,
                            redis_empty_wait_secs=0.0)
    clock = SystemClock()
    return ReplicatedLive(s, ChatService(s, clock), SessionStore.from_settings(s, clock),
                          StatsCounter(clock))


async def _nothing() -> None:
    return None


def _scenario(chat: ChatService, clock: FakeClock, first: int, count: int) -> None:
    ref = StaffRef(id=1, username="user1", role="counsellor", alias="Mira", capacity=50)
    sconn = Conn(STAFF_NS, "ra.s1")
    if first == 0:
        chat.staff_connected(ref, sconn)
        chat.duty(ref, True)
    for n in range(first, first + count):
        clock.advance(1)
        reply = chat.start(Conn(YOUTH_NS, f"rb.y{n}"), _pk(), StartProfile()).reply
        if n % 2:
            chat.claim(ref, sconn, str(reply["conversation"]), _pk())
    chat.queue_updates()
    chat.tick()


def test_a_node_started_later_from_the_snapshot_holds_the_same_state(
        settings: Settings, server: RedisServer) -> None:
    clock = FakeClock()
    chat = ReplicatedChat(settings, clock, None, server.url, server.password)
    try:
        _scenario(chat, clock, 0, 6)  # type: ignore[arg-type]
        first = chat.replicas[0]
        chat._run(first._submit("chat", "snapshot", []))
        with server.admin() as r:
            assert r.exists(SNAPSHOT)
        _scenario(chat, clock, 6, 4)  # type: ignore[arg-type]  # after the snapshot

        late = _node(settings, server, "rc")

        async def join() -> None:
            await late.start(_deliver_nowhere, _nothing)
            while late._last_id != first._last_id:  # noqa: ASYNC110
                await asyncio.sleep(0.001)
        chat._run(join())
        try:
            # The state the first node holds, rebuilt from the snapshot and
            # the log after it: ten conversations, five claimed.
            assert len(late.chat.conversations) == 10
            assert state_of(late) == state_of(first)
        finally:
            chat._run(late.close())
    finally:
        chat.close()


async def _deliver_nowhere(out: Outcome, queue_round: bool) -> None:
    return None


def test_staff_sessions_reach_every_node_and_a_revoked_one_stays_revoked(
        settings: Settings, server: RedisServer) -> None:
    async def run() -> None:
        a, b = _node(settings, server, "na"), _node(settings, server, "nb")
        await a.start(_deliver_nowhere, _nothing)
        await b.start(_deliver_nowhere, _nothing)
        try:
            record = StaffRecord(id=7, username="sara", password_hash="x",
                                 totp_seed_sealed=b"", totp_last_timecode=None,
                                 role="counsellor", alias="Mira", capacity=3, disabled=False,
                                 failed_logins=0, locked_until=None,
                                 created_at="2026-12-04T00:00:00Z")
            token, _csrf = a.sessions.create(record)
            assert b.sessions.get(token) is None  # not yet told
            await a.sessions_changed()
            await eventually(lambda: b.sessions.get(token) is not None)
            a.sessions.revoke(token)
            await a.sessions_changed()
            await eventually(lambda: b.sessions.get(token) is None)
            # Nothing in Redis names the token itself, only its keyed hash.
            with server.admin() as r:
                assert token not in str(r.xrange(LOG))
        finally:
            await a.close()
            await b.close()
    asyncio.run(run())


def test_a_direct_event_reaches_another_nodes_connection_sealed_and_leaves_nothing(
        settings: Settings, server: RedisServer) -> None:
    async def run() -> None:
        got: list[Outcome] = []

        async def deliver_b(out: Outcome, queue_round: bool) -> None:
            got.append(out)
        a = _node(settings, server, "na")
        await a.start(_deliver_nowhere, _nothing)
        secret = "canary-passphrase-words"
        try:
            # To a node that is not running: what waits in Redis is sealed,
            # and goes by itself.
            await a.direct(Emit("return_code", {"passphrase": secret}, (Conn(YOUTH_NS, "nc.y"),)))
            with redis.Redis(host="127.0.0.1", port=server.port) as r:  # bytes, not text
                waiting = r.xrange(DIRECT + "nc")
                assert len(waiting) == 1 and secret.encode() not in waiting[0][1][b"s"]
                assert 0 < r.pttl(DIRECT + "nc") <= 60_000
            # To a running node: delivered to its connection, then deleted.
            b = _node(settings, server, "nb")
            await b.start(deliver_b, _nothing)
            try:
                youth = Conn(YOUTH_NS, "nb.youth1")
                await a.direct(Emit("return_code", {"passphrase": secret}, (youth,)))
                await eventually(lambda: any(e.payload.get("passphrase") == secret
                                             for o in got for e in o.emits), 20)
                assert got[-1].emits[0].to == (youth,)

                def emptied() -> bool:
                    with server.admin() as r:
                        return r.xlen(DIRECT + "nb") == 0
                await eventually(emptied, 20)
            finally:
                await b.close()
        finally:
            await a.close()
    asyncio.run(run())


def test_a_redis_that_writes_to_disk_is_refused(settings: Settings, tmp_path: Path) -> None:
    with redis_server() as server:
        with server.admin() as r:
            r.config_set("appendonly", "yes")
        node = _node(settings, server, "na")

        async def run() -> None:
            with pytest.raises(RuntimeError, match="appendonly"):
                await node.start(_deliver_nowhere, _nothing)
            await node.close()
        try:
            asyncio.run(run())
        finally:
            with server.admin() as r:
                r.config_set("appendonly", "no")


def test_the_log_carries_no_resume_secret(settings: Settings, server: RedisServer) -> None:
    clock = FakeClock()
    chat = ReplicatedChat(settings, clock, None, server.url, server.password)
    try:
        ref = StaffRef(id=1, username="user1", role="counsellor", alias="Mira", capacity=3)
        chat.staff_connected(ref, Conn(STAFF_NS, "ra.s1"))  # type: ignore[attr-defined]
        chat.duty(ref, True)  # type: ignore[attr-defined]
        reply = chat.start(Conn(YOUTH_NS, "rb.y1"), _pk(), StartProfile()).reply  # type: ignore[attr-defined]
        secret = str(reply["resume"])
        assert len(secret) > 20
        with server.admin() as r:
            entries = r.xrange(LOG)
        assert entries and secret not in str(entries)
        assert all(codec.loads(fields["c"]) for _, fields in entries)
    finally:
        chat.close()



def test_an_entry_no_node_wrote_is_not_applied(settings: Settings, server: RedisServer) -> None:
    """One who can write to Redis but holds no node's secrets cannot slip a
    command into what the nodes apply (a forged seat, say)."""
    clock = FakeClock()
    chat = ReplicatedChat(settings, clock, None, server.url, server.password)
    try:
        ref = StaffRef(id=1, username="user1", role="counsellor", alias="Mira", capacity=3)
        chat.staff_connected(ref, Conn(STAFF_NS, "ra.s1"))  # type: ignore[attr-defined]
        before = state_of(chat.replicas[0])
        forged = codec.dumps({"o": "x:1", "t": 1, "k": "chat", "m": "duty", "a": [ref, True],
                              "n": 0.0})
        with server.admin() as r:
            r.xadd(LOG, {"c": forged})
            r.xadd(LOG, {"c": forged, "h": "00" * 32})
        chat.staff_connected(ref, Conn(STAFF_NS, "ra.s2"))  # type: ignore[attr-defined]
        first = chat.replicas[0].chat
        assert not first.counsellors[1].on_duty  # the forged duty was not applied
        assert state_of(chat.replicas[0]) != before  # the genuine call after it was
    finally:
        chat.close()


def test_a_command_appended_twice_is_applied_once(settings: Settings,
                                                   server: RedisServer) -> None:
    """A retried append after a lost answer logs the command twice; "take
    next" must not then seat the counsellor with a second youth."""
    clock = FakeClock()
    chat = ReplicatedChat(settings, clock, None, server.url, server.password)
    first = chat.replicas[0]
    real_xadd = first._redis.xadd

    async def twice(*args: object, **kwargs: object) -> object:
        await real_xadd(*args, **kwargs)  # type: ignore[arg-type]
        return await real_xadd(*args, **kwargs)  # type: ignore[arg-type]
    try:
        ref = StaffRef(id=1, username="user1", role="counsellor", alias="Mira", capacity=3)
        sconn = Conn(STAFF_NS, "ra.s1")
        chat.staff_connected(ref, sconn)  # type: ignore[attr-defined]
        chat.duty(ref, True)  # type: ignore[attr-defined]
        for n in range(2):
            chat.start(Conn(YOUTH_NS, f"rb.y{n}"), _pk(), StartProfile())  # type: ignore[attr-defined]
        first._redis.xadd = twice  # type: ignore[method-assign]
        chat.claim(ref, sconn, None, _pk())  # type: ignore[attr-defined]
        first._redis.xadd = real_xadd  # type: ignore[method-assign]
        for replica in chat.replicas:
            assert replica.chat.counsellors[1].load == 1
            assert len(replica.chat.queue) == 1
    finally:
        first._redis.xadd = real_xadd  # type: ignore[method-assign]
        chat.close()


def test_a_node_that_missed_trimmed_entries_starts_again_from_the_snapshot(
        settings: Settings, server: RedisServer) -> None:
    clock = FakeClock()
    chat = ReplicatedChat(settings, clock, None, server.url, server.password)
    try:
        _scenario(chat, clock, 0, 2)  # type: ignore[arg-type]
        first, second = chat.replicas
        # The second node "was away": its reader was at an entry the log no
        # longer holds once two snapshots have trimmed it.
        behind = second._last_id
        second._tasks[0].cancel()
        for n in range(2, 5):  # meanwhile, on the first node
            clock.advance(1)
            chat._run(first.call("start", Conn(YOUTH_NS, f"rb.y{n}"), _pk(), StartProfile()))
        chat._run(first._submit("chat", "snapshot", []))
        chat._run(first._submit("chat", "snapshot", []))
        with server.admin() as r:
            assert r.xrange(LOG, count=1)[0][0] > behind  # trimmed past it

        async def come_back() -> None:
            await second._check_gap()
        chat._run(come_back())
        assert len(second.chat.conversations) == len(first.chat.conversations) == 5
        assert state_of(second) == state_of(first)
    finally:
        chat.close()


async def _open_node(settings: Settings, server: RedisServer) -> ReplicatedLive:
    """A started node with a counsellor on duty (youths may start)."""
    node = _node(settings, server, "na")
    await node.start(_deliver_nowhere, _nothing)
    ref = StaffRef(id=1, username="user1", role="counsellor", alias="Mira", capacity=3)
    await node.call("staff_connected", ref, Conn(STAFF_NS, "na.s1"))
    await node.call("duty", ref, True)
    return node


def test_calls_made_together_are_appended_together_and_in_order(
        settings: Settings, server: RedisServer) -> None:
    """Commands a node takes while an append is on its way go to Redis in one
    pipeline (one round trip for many), in the order they were taken, and
    every caller gets its own answer."""
    async def run() -> None:
        node = await _open_node(settings, server)
        trips = 0
        real_xadd, real_pipeline = node._redis.xadd, node._redis.pipeline

        async def xadd(*args: object, **kwargs: object) -> object:
            nonlocal trips
            trips += 1
            return await real_xadd(*args, **kwargs)  # type: ignore[arg-type]

        def pipeline(*args: object, **kwargs: object) -> object:
            nonlocal trips
            trips += 1
            return real_pipeline(*args, **kwargs)  # type: ignore[arg-type]
        node._redis.xadd = xadd  # type: ignore[method-assign]
        node._redis.pipeline = pipeline  # type: ignore[method-assign]
        try:
            conns = [Conn(YOUTH_NS, f"na.y{n}") for n in range(40)]
            outs = await asyncio.gather(*(node.call("start", conn, _pk(), StartProfile())
                                          for conn in conns))
            assert trips < len(conns) // 2
            ids = [str(out.reply["conversation"]) for out in outs]
            assert len(set(ids)) == len(conns)
            # Queued in the order taken: each youth's place is its call's.
            assert [node.chat.queue.position(cid) for cid in ids] == \
                list(range(1, len(conns) + 1))
            with server.admin() as r:
                tokens = [codec.loads(fields["c"])["t"] for _, fields in r.xrange(LOG)
                          if codec.loads(fields["c"]).get("m") == "start"]
            assert tokens == sorted(tokens) and len(tokens) == len(conns)
        finally:
            node._redis.xadd = real_xadd  # type: ignore[method-assign]
            node._redis.pipeline = real_pipeline  # type: ignore[method-assign]
            await node.close()
    asyncio.run(run())


def test_a_node_closing_while_appends_wait_answers_every_caller(
        settings: Settings, server: RedisServer) -> None:
    """Redis stops answering with appends on their way, and the node closes:
    every caller is told the live state is unavailable; none waits for ever."""
    async def run() -> None:
        node = await _open_node(settings, server)
        with server.admin() as r:
            r.execute_command("CLIENT", "PAUSE", "30000", "WRITE")
        try:
            calls = [asyncio.ensure_future(node.call("start", Conn(YOUTH_NS, f"na.y{n}"), _pk(),
                                                     StartProfile())) for n in range(5)]
            await eventually(lambda: len(node._waiting) == len(calls))
            await node.close()
            done, pending = await asyncio.wait(calls, timeout=10)
            assert not pending
            assert all(isinstance(c.exception(), LiveUnavailable) for c in done)
        finally:
            with server.admin() as r:
                r.execute_command("CLIENT", "UNPAUSE")
    asyncio.run(run())


def test_with_a_replica_to_wait_for_the_answer_waits_for_it(settings: Settings,
                                                            server: RedisServer) -> None:
    """redis_wait_replica_ms: a caller hears back only once a replica holds
    its command (or the wait ran out), although its own node applied the
    command long before; a replica that stops answering delays the chat by
    the wait, it does not stop it."""
    with redis_server(replica_of=server) as replica:
        async def run() -> None:
            node = _node(dataclasses.replace(settings, redis_wait_replica_ms=400), server, "na")
            await node.start(_deliver_nowhere, _nothing)
            try:
                await node.call("disconnect_node", "zz")  # a replica confirms: at once
                assert replica.proc is not None
                replica.proc.send_signal(signal.SIGSTOP)
                try:
                    loop = asyncio.get_running_loop()
                    started = loop.time()
                    await node.call("disconnect_node", "zz")
                    assert loop.time() - started >= 0.4  # waited for the replica's WAIT
                    # A replica known to be gone: the next appends do not
                    # wait for it (one append on its way holds every command).
                    with server.admin() as r:
                        waits = _calls(r, "wait")
                    for _ in range(5):
                        await node.call("disconnect_node", "zz")
                    with server.admin() as r:
                        assert _calls(r, "wait") == waits
                finally:
                    replica.proc.send_signal(signal.SIGCONT)
                # Back: the node finds it connected and waits for it again.
                await eventually(lambda: not node._unconfirmed, secs=15)
                await node.call("disconnect_node", "zz")
                with server.admin() as r:
                    assert _calls(r, "wait") > waits
            finally:
                await node.close()
        asyncio.run(run())


def _calls(r: redis.Redis, command: str) -> int:
    return int(r.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))
