"""The live state on several nodes: one ordered log in Redis, a full copy of
the state on every node.

Every state-changing call becomes a command appended to one Redis stream.
Every node reads the stream in order and applies each command to its own
ChatService, so every node holds the same state; each node delivers the
resulting events only to the connections it holds (an event for another
node's connection finds no socket here and is dropped: that node applies the
same command and delivers it). The order of the log is what makes a claim's
"first wins" hold across nodes, with the rules written once, in
chatserver/domain/. Design: docs/design/live-state.md, decision 0011.

A command is deterministic: its time is the taking node's clock (never
before the previous command's), the ids it needs are drawn by the node that
took it and travel with it, and a resume secret stays on that node (only its
keyed hash travels).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets as _secrets
import time
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from chatserver.crypto.seal import SealBroken, seal, unseal
from chatserver.crypto.tokens import equal, keyed_hash, new_id, new_pseudonym, new_secret
from chatserver.domain.events import Emit, Outcome
from chatserver.errors import ChatError, LiveUnavailable
from chatserver.live import codec
from chatserver.live.aside import Pickled
from chatserver.live.base import Deliver, DropAll
from chatserver.live.sentinel_pool import BlockingSentinelPool
from chatserver.settings import sentinel_addresses

if TYPE_CHECKING:
    from chatserver.domain.clock import Clock
    from chatserver.domain.conversations import ChatService
    from chatserver.domain.sessions import SessionStore
    from chatserver.domain.stats import StatsCounter
    from chatserver.settings import Settings

log = logging.getLogger(__name__)

LOG = "chat:live:log"
SNAPSHOT = "chat:live:snapshot"
TRIMMED = "chat:live:trimmed"  # the log holds nothing older than this id
LEADER = "chat:live:leader"
NODES = "chat:live:nodes"
HEARTBEAT = "chat:live:node:"
DIRECT = "chat:live:direct:"

# What the nodes' Redis user may do, and nothing more (deploy/redis/users.acl
# grants exactly this; tests check the two agree): keys under "chat:", no
# channels, these commands.
REDIS_COMMANDS = ("ping", "info", "hello", "auth", "client|setname", "xadd", "xread",
                  "xrange", "xrevrange", "xtrim", "xlen", "xdel", "set", "get", "del",
                  "exists", "pexpire", "sadd", "srem", "smembers", "evalsha", "eval",
                  "script|load", "multi", "exec", "wait")
REDIS_KEYS = "chat:*"

HEARTBEAT_SECS = 1.0
# A node silent this long is declared lost and its connections dropped;
# longer than a failover or a CLIENT PAUSE, short enough that a youth's
# reconnect finds their seat kept (grace_secs is 120 s).
NODE_LOST_MS = 6000
LEASE_MS = 5000
# A snapshot is pickled by a forked child (aside.py; the leader's loop stops
# only for the fork, ~10-20 ms at a national peak); the log before the
# previous one is then trimmed, so ciphertext stays in Redis about two of these.
SNAPSHOT_SECS = 60.0
SNAPSHOT_MAC_BYTES = 32
READ_COUNT = 500
# Tokens remembered per taking process (a node's life), to apply each
# command once; a process silent this long (log time) is forgotten.
SEEN_WINDOW = 4096
SEEN_FORGET_SECS = 24 * 3600.0
# Entries applied (and their events sent) before the read loop hands the loop
# back: 32 were ~6 ms at a national peak, a stall for every message meanwhile.
APPLY_SLICE = 8
READ_BLOCK_MS = 1000
# How long a caller waits for its own command to come back from the log
# before the node calls the live state unavailable.
COMMAND_WAIT_SECS = 20.0
RETRY_SECS = (0.05, 0.1, 0.2, 0.5, 1.0)
# Commands appended in one pipeline at most (they wait for the batch before).
APPEND_BATCH = 256
POOL_CONNECTIONS = 64
OWED_DISCONNECTS_MAX = 50_000
# A node's direct stream: sealed events waiting for that node to read them.
DIRECT_MAX = 1000
DIRECT_TTL_MS = 60_000
CLOSE_WAIT_SECS = 2.0
# Calls that draw no random value travel without any.
NO_DRAWS = frozenset({
    "send", "delivered", "typing", "tick", "queue_updates", "queue_sync", "disconnect",
    "disconnect_node", "pause", "duty", "staff_connected", "resume_hashed", "end", "tag",
    "refer",
    "leave", "liaison_leave", "register_handover_key", "remove_member", "choose",
    "create_invite", "offer_transfer", "snapshot"})
IDS, PSEUDONYMS, SECRETS = 2, 1, 2
# Not part of the state a snapshot carries: collaborators, and the node's
# own ops history (each node samples its own).
NOT_STATE = frozenset({"settings", "clock", "stats", "_resume_key", "draws", "_history"})
# Grant-once Lua: renew the lease only if it is still ours (a node paused
# past its lease must not extend another node's).
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 2 end
return 0
"""


class LogClock:
    """Time for the rules: the applied command's time while one is applied,
    else the node's own clock (for reads such as waiting times)."""

    def __init__(self, own: Clock) -> None:
        self.at: float | None = None
        self._own = own

    def now(self) -> float:
        return self.at if self.at is not None else self._own.now()


class ReplayDraws:
    """The values the taking node drew for one command, in order. The resume
    secrets are known only there; elsewhere a secret is "" (no reply is sent)."""

    def __init__(self, drawn: dict[str, list[str]] | None, secrets: list[str] | None) -> None:
        drawn = drawn or {}
        self._ids = list(drawn.get("i", ()))
        self._pseudonyms = list(drawn.get("p", ()))
        self._hashes = list(drawn.get("h", ()))
        self._secrets = list(secrets or ())

    def id(self) -> str:
        return _take(self._ids)

    def pseudonym(self) -> str:
        return _take(self._pseudonyms)

    def secret(self) -> tuple[str, bytes]:
        digest = bytes.fromhex(_take(self._hashes))
        return (self._secrets.pop(0) if self._secrets else ""), digest


def _take(values: list[str]) -> str:
    if not values:
        # A bug, not bad input: the call drew more than its command carries.
        raise RuntimeError("a replicated command drew more values than it carries")
    return values.pop(0)


class ReplicatedLive:
    replicated = True

    def __init__(self, settings: Settings, chat: ChatService, sessions: SessionStore,
                 stats: StatsCounter) -> None:
        self.settings = settings
        self.chat = chat
        self.sessions = sessions
        self._stats = stats
        self.node_id = settings.node_id
        # This process, not just this node: a restarted node must not take
        # its previous life's commands for its own.
        self.origin = f"{self.node_id}:{_secrets.token_hex(4)}"
        # Commands are stamped by the taking node's clock; the log's order
        # makes the applied time never go back (see _apply).
        self._stamp = chat.clock
        self._log_time = 0.0
        self.clock = LogClock(chat.clock)
        chat.clock = self.clock
        chat.stats = None
        self._hash_secret = chat._hash_resume
        secrets = settings.require_secrets()
        self._password = secrets.redis_password or None
        # Seals direct events between nodes: a key of the nodes' own, never
        # in Redis.
        self._direct_key = keyed_hash(secrets.session_key, "live direct v1", "live-direct")
        # Every log entry and snapshot carries a MAC under a key of the nodes'
        # own: one who can write to Redis but holds no node's secrets cannot
        # slip a command (a forged roster, say) into what the nodes apply.
        self._log_key = keyed_hash(secrets.session_key, "live log v1", "live-log")
        # Connections are made on first use, in start().
        self._sentinel: Sentinel | None = None
        self._wait_ms = settings.redis_wait_replica_ms
        self._unconfirmed = False  # the last WAIT found no replica
        self._warned_unconfirmed = False
        self._redis = self._client(POOL_CONNECTIONS)
        self._reader = self._client(2)  # the log's blocking reads wait on their own
        self._direct = self._client(2)  # and so do the direct stream's
        self._last_id = "0-0"
        self._counter = 0
        self._waiting: dict[int, asyncio.Future[Outcome]] = {}
        self._outbox: list[tuple[str, asyncio.Future[None]]] = []
        self._appending: dict[int, asyncio.Future[None]] = {}  # token -> its append
        self._flusher: asyncio.Task[None] | None = None
        self._secrets: dict[int, list[str]] = {}
        self._deliver: Deliver | None = None
        self._drop_all: DropAll | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._rounds: set[asyncio.Task[None]] = set()
        self._reachable = False
        self._caught_up = False
        self.is_leader = False
        self._owed_disconnects: list[Any] = []
        # origin -> (newest token, recent tokens, log time last seen)
        self._seen: dict[str, tuple[int, set[int], float]] = {}
        self._genesis_waited = False
        self._last_snapshot_id: str | None = None
        self._snapshot_busy = False  # one snapshot at a time is on its way
        self.applied = 0  # commands applied (metrics)
        self._direct_ready = asyncio.Event()
        self._closing = False

    # ------------------------------------------------------------ lifecycle

    def _client(self, max_connections: int) -> aioredis.Redis:
        # A blocking pool: redis-py's default pool raises past its size; this
        # one waits for a free connection (bounded by ``timeout``).
        options: dict[str, Any] = {
            "password": self._password, "max_connections": max_connections, "timeout": 5,
            # Named, not left to redis-py's default (5 s in 8.x, none before):
            # redis_wait_replica_ms and the blocking reads stay below it.
            "socket_timeout": 5, "socket_connect_timeout": 2, "health_check_interval": 10,
            "client_name": f"chatserver-{self.node_id}",
            # No retries inside redis-py (its default backs off for seconds):
            # this module retries itself, within what a caller can wait.
            "retry": Retry(NoBackoff(), 0)}
        if not self.settings.redis_sentinels.strip():
            pool = aioredis.BlockingConnectionPool.from_url(self.settings.redis_url, **options)
            return aioredis.Redis(connection_pool=pool)
        # With Sentinel the pool asks the Sentinels where the primary is (for
        # every new connection and once a second) and closes connections to
        # a former primary: after a failover the next retry reaches the new
        # one (sentinel_pool.py). redis_url gives the user, database and
        # TLS; not the address.
        url: dict[str, Any] = dict(parse_url(self.settings.redis_url))
        for key in ("host", "port", "path"):
            url.pop(key, None)
        if url.pop("connection_class", None) is not None:  # rediss://
            url["ssl"] = True
        if self._sentinel is None:
            self._sentinel = Sentinel(
                sentinel_addresses(self.settings.redis_sentinels),
                sentinel_kwargs={"socket_timeout": 2, "socket_connect_timeout": 2})
        client: aioredis.Redis = self._sentinel.master_for(
            self.settings.redis_service, connection_pool_class=BlockingSentinelPool,
            **{**url, **options})
        return client

    async def start(self, deliver: Deliver, drop_all: DropAll) -> None:
        self._deliver, self._drop_all = deliver, drop_all
        await self._check_persistence()
        # No snapshot, and a log that does not start at the beginning (a Redis
        # that was emptied while other nodes kept their copies): their leader
        # writes a snapshot within a heartbeat. Polled: the news is in Redis.
        while not await self._load_snapshot():  # noqa: ASYNC110
            await asyncio.sleep(HEARTBEAT_SECS)
        await self._catch_up()
        self._reachable = True
        self._tasks = [asyncio.create_task(self._read_loop(), name="live-log"),
                       asyncio.create_task(self._duties(), name="live-duties"),
                       asyncio.create_task(self._direct_loop(), name="live-direct")]
        # This node's previous life (a crash, a restart) may have left
        # connections in the state: none of them exists any more.
        await self.call("disconnect_node", self.node_id)
        await self._heartbeat()
        # Ready only once direct events can reach this node's connections.
        await asyncio.wait_for(self._direct_ready.wait(), COMMAND_WAIT_SECS)
        self._caught_up = True

    async def close(self) -> None:
        # The two readers end by themselves at their next read (a blocking
        # read returns within READ_BLOCK_MS): a blocked XREAD that is
        # cancelled instead may not notice until its connection goes, and
        # under load was seen to outlive the close.
        self._closing = True
        readers = [t for t in self._tasks if t.get_name() in ("live-log", "live-direct")]
        if readers:
            await asyncio.wait(readers, timeout=READ_BLOCK_MS / 1000 + CLOSE_WAIT_SECS)
        tasks = [*self._tasks, *self._rounds]
        if self._flusher is not None:
            tasks.append(self._flusher)
        for task in tasks:
            task.cancel()
        if tasks:
            _, lingering = await asyncio.wait(tasks, timeout=CLOSE_WAIT_SECS)
            if lingering:
                await self._reader.connection_pool.disconnect(inuse_connections=True)
                await self._direct.connection_pool.disconnect(inuse_connections=True)
                await asyncio.wait(lingering, timeout=CLOSE_WAIT_SECS)
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(LiveUnavailable())
        self._waiting.clear()
        try:
            # Leaving on purpose: the others learn it at once, not after the
            # heartbeat runs out (a rolling restart's pause).
            await self._redis.delete(HEARTBEAT + self.node_id)
            if self.is_leader:
                await self._redis.delete(LEADER)
        except (RedisError, OSError):
            pass
        await self._redis.aclose()
        await self._reader.aclose()
        await self._direct.aclose()
        if self._sentinel is not None:
            await self._sentinel.aclose()

    async def _check_persistence(self) -> None:
        """Refuse a Redis that writes to disk: ciphertext would be at rest."""
        info = await self._redis.info("persistence")
        if int(info.get("aof_enabled", 0)):
            raise RuntimeError("Redis has appendonly on: chatserver needs persistence off "
                               "(docs/operations.md, \"Redis\")")
        try:
            save = await self._redis.config_get("save")
        except ResponseError:  # the ACL user may not read the config
            log.info("could not read Redis's save setting; check it is \"\"")
            return
        if save.get("save"):
            raise RuntimeError("Redis has RDB snapshots configured (save): chatserver needs "
                               "save \"\" (docs/operations.md, \"Redis\")")

    def up(self) -> bool:
        return self._reachable and self._caught_up and \
            not any(task.done() for task in self._tasks)

    # ------------------------------------------------------------- calling

    def _draw(self, token: int) -> dict[str, list[str]]:
        secrets = [new_secret() for _ in range(SECRETS)]
        self._secrets[token] = secrets
        return {"i": [new_id() for _ in range(IDS)],
                "p": [new_pseudonym() for _ in range(PSEUDONYMS)],
                "h": [self._hash_secret(s).hex() for s in secrets]}

    async def call(self, method: str, *args: Any) -> Outcome:
        if method == "resume":
            # The resume secret stays here: the log carries its keyed hash.
            conn, conv, member, secret, staff = args
            return await self._submit("chat", "resume_hashed",
                                      [conn, conv, member, self._hash_secret(secret), staff])
        return await self._submit("chat", method, list(args))

    async def _submit(self, kind: str, method: str, args: list[Any]) -> Outcome:
        self._counter += 1
        token = self._counter
        command: dict[str, Any] = {"o": self.origin, "t": token, "k": kind, "m": method,
                                   "a": args, "n": self._stamp.now()}
        if kind == "chat" and method not in NO_DRAWS:
            command["d"] = self._draw(token)
        fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting[token] = fut
        try:
            await self._append(codec.dumps(command), token)
            # Not wait_for: its extra hop would let the log's reader apply
            # the next command before this caller runs (see _apply).
            async with asyncio.timeout(COMMAND_WAIT_SECS):
                return await fut
        except (RedisError, OSError, TimeoutError):
            raise LiveUnavailable(self._whom_to_call()) from None
        finally:
            self._waiting.pop(token, None)
            self._secrets.pop(token, None)

    async def _append(self, payload: str, token: int) -> None:
        """Put ``payload`` on the log; return once Redis has it (or this
        node has applied it, whichever comes first). Appends asked for while
        a batch is on its way go together in the next one: one pipeline, one
        connection and one round trip for many commands, where a node used
        to send one XADD per command (docs/performance.md, "Several nodes on
        Redis"). This node's commands reach the log in the order taken."""
        if self._closing:
            raise ConnectionError("the node is closing")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outbox.append((payload, done))
        self._appending[token] = done
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_outbox(), name="live-append")
        try:
            await done
        finally:
            self._appending.pop(token, None)

    async def _flush_outbox(self) -> None:
        batch: list[tuple[str, asyncio.Future[None]]] = []
        try:
            while self._outbox:
                # A caller that gave up (its connection went) is not sent.
                batch = [item for item in self._outbox[:APPEND_BATCH] if not item[1].done()]
                del self._outbox[:APPEND_BATCH]
                if not batch:
                    continue
                try:
                    await self._append_batch([payload for payload, _ in batch])
                except Exception as exc:  # every caller must hear of it
                    # Past the retries: everything still queued would meet
                    # the same Redis, so its callers hear it now, not one
                    # batch's retries after another.
                    self._fail_appends([*batch, *self._outbox], exc)
                    self._outbox.clear()
                    batch = []
                    continue
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
                batch = []
        except asyncio.CancelledError:
            # Closing: nobody may wait for ever on an append that is not made.
            self._fail_appends([*batch, *self._outbox], ConnectionError("the node is closing"))
            self._outbox.clear()
            raise

    @staticmethod
    def _fail_appends(items: list[tuple[str, asyncio.Future[None]]],
                      error: BaseException) -> None:
        for _, done in items:
            if not done.done():
                done.set_exception(error if isinstance(error, RedisError | OSError)
                                   else ConnectionError(type(error).__name__))

    async def _append_batch(self, payloads: list[str]) -> None:
        """XADD each, retried through a short outage (a failover, a dropped
        connection). A retry after a lost answer may append a command twice:
        every node applies it once (_first_time)."""
        for delay in (*RETRY_SECS, None):
            try:
                if self._wait_ms:
                    await self._append_replicated(payloads)
                elif len(payloads) == 1:
                    await self._redis.xadd(LOG, self._signed(payloads[0]))
                else:
                    pipe = self._redis.pipeline(transaction=False)
                    for payload in payloads:
                        pipe.xadd(LOG, self._signed(payload))
                    await pipe.execute()
                self._reachable = True
                return
            except (RedisError, OSError):
                if delay is None:
                    self._reachable = False
                    raise
                await asyncio.sleep(delay)

    async def _append_replicated(self, payloads: list[str]) -> None:
        """XADD, then WAIT on the same connection (WAIT counts the replicas
        that have this connection's writes): the callers are answered only
        once a replica, which a failover would promote, holds the commands.
        If none confirms within the wait (the replica is down), the commands
        stand (the primary has them) and the chat goes on, unprotected, with
        a warning."""
        pipe = self._redis.pipeline(transaction=False)
        for payload in payloads:
            pipe.xadd(LOG, self._signed(payload))
        if self._unconfirmed:
            # No replica lately (a failover leaves the new primary without
            # one until the old comes back): nobody waits for none; the
            # node's duties look once a second whether one is back (a WAIT
            # here would hold every command behind it, one node has one
            # append on its way).
            await pipe.execute()
            return
        pool = self._redis.connection_pool
        primary = getattr(pool, "master_address", None)
        pipe.wait(1, self._wait_ms)
        replicas = (await pipe.execute())[-1]
        if not int(replicas) and isinstance(pool, BlockingSentinelPool) \
                and await pool.get_master_address() != primary:  # type: ignore[no-untyped-call]
            # Written to a primary the Sentinels had just replaced (it lost
            # its replica to the promotion): that copy will be dropped when
            # the old primary is made a replica. Append again, to the new one.
            raise ConnectionError("the Redis primary moved during the append")
        if int(replicas) >= 1:
            if self._warned_unconfirmed:
                log.info("a Redis replica confirms live-state appends again")
            self._warned_unconfirmed = False
            return
        self._unconfirmed = True
        if not self._warned_unconfirmed:  # once per outage, not per probe
            self._warned_unconfirmed = True
            log.warning("no Redis replica confirmed a live-state append within %d ms; "
                        "until one does, a failover could lose the latest commands",
                        self._wait_ms)

    def _signed(self, payload: str) -> dict[Any, Any]:
        return {"c": payload, "h": keyed_hash(self._log_key, payload, "live-log").hex()}

    def _opened(self, fields: dict[bytes, bytes]) -> bytes:
        """The payload of an entry the nodes wrote; ValueError for any other."""
        payload = fields[b"c"]
        mac = keyed_hash(self._log_key, payload.decode(), "live-log").hex().encode()
        if not equal(mac, fields.get(b"h", b"")):
            raise ValueError("not written by a node of this deployment")
        return payload

    def _snapshot_mac(self, data: bytes) -> bytes:
        return hashlib.blake2b(data, key=self._log_key, digest_size=SNAPSHOT_MAC_BYTES,
                               person=b"live-snapshot").digest()

    def _whom_to_call(self) -> dict[str, Any]:
        status = self.chat.status()
        return {key: status[key] for key in ("hours", "alternatives", "emergency")}

    async def timer(self, method: str) -> Outcome | None:
        if not self.is_leader:
            return None
        try:
            return await self.call(method)
        except LiveUnavailable:
            return None

    async def disconnect(self, conn: Any) -> Outcome:
        """A connection went away; if the log cannot take it now it is owed
        and sent later (a member must not look online for ever)."""
        try:
            return await self.call("disconnect", conn)
        except LiveUnavailable:
            if conn not in self._owed_disconnects and \
                    len(self._owed_disconnects) < OWED_DISCONNECTS_MAX:
                self._owed_disconnects.append(conn)
            # (Past the bound the leader's node check still covers them.)
            return Outcome()

    async def sessions_changed(self) -> None:
        changes = self.sessions.take_journal()
        if changes:
            try:
                await self._submit("sessions", "apply_journal", [changes])
            except LiveUnavailable:
                # Not lost: a logout must reach the other nodes when it can.
                self.sessions.journal[:0] = changes
                raise

    # ------------------------------------------------------------- applying

    async def _read_loop(self) -> None:
        failures = 0
        while not self._closing:
            try:
                if failures:
                    await self._check_gap()
                got = await self._reader.xread({LOG: self._last_id}, count=READ_COUNT,
                                               block=READ_BLOCK_MS)
                self._reachable = True
                failures = 0
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError):
                self._reachable = False
                await asyncio.sleep(RETRY_SECS[min(failures, len(RETRY_SECS) - 1)])
                failures += 1
                continue
            await self._apply_all(got)

    async def _check_gap(self) -> None:
        """Back after an outage: if the log was trimmed past what this node
        applied (or Redis was emptied), reading on would silently skip
        commands and this copy would differ from the others'. Start again
        from the newest snapshot instead, closing this node's connections so
        that their clients resume against the state as it is."""
        # Not "the log's first entry is newer than mine": a Redis emptied
        # while this node held the state starts a new log whose every entry
        # is newer, and nothing was missed. The leader notes where it trimmed.
        trimmed = await self._reader.get(TRIMMED)
        if trimmed is None or _id_key(_text(trimmed)) <= _id_key(self._last_id):
            return
        log.error("this node missed part of the live-state log; starting again from the "
                  "newest snapshot")
        self._caught_up = False
        if self._drop_all is not None:
            self._spawn(self._drop_all())
        while not await self._load_snapshot():  # noqa: ASYNC110  # polled, as at start
            await asyncio.sleep(HEARTBEAT_SECS)
        await self._catch_up()
        self._caught_up = True

    async def _catch_up(self) -> None:
        while True:
            got = await self._reader.xread({LOG: self._last_id}, count=READ_COUNT)
            if not got:
                return
            await self._apply_all(got)

    async def _apply_all(self, got: Any) -> None:
        """XREAD's answer: [[stream, [(entry id, fields), ...]]]."""
        applied = 0
        for _, entries in got or ():
            for entry_id, fields in entries:
                await self._apply(entry_id, fields)
                applied += 1
                if applied % APPLY_SLICE == 0:
                    await asyncio.sleep(0)  # a batch is up to READ_COUNT: not one stall

    async def _apply(self, entry_id: bytes | str, fields: dict[bytes, bytes]) -> None:
        entry = _text(entry_id)
        self._last_id = entry
        try:
            await self._apply_entry(entry, fields)
        except Exception:  # one bad entry must not stop this node's reader for good
            log.exception("applying a live-log entry failed")

    def _first_time(self, origin: str, token: Any) -> bool:
        """Whether this (origin, token) has not been applied yet: a command
        appended twice (a retry after a lost answer) or replayed later is
        applied once. Every node decides alike (the record is in snapshots)."""
        if not isinstance(token, int):
            return True
        newest, recent, _ = self._seen.get(origin, (0, set(), 0.0))
        if token in recent or token <= newest - SEEN_WINDOW:
            return False
        recent.add(token)
        newest = max(newest, token)
        if len(recent) > 2 * SEEN_WINDOW:
            recent = {t for t in recent if t > newest - SEEN_WINDOW}
        self._seen[origin] = (newest, recent, self._log_time)
        return True

    async def _apply_entry(self, entry: str, fields: dict[bytes, bytes]) -> None:
        try:
            command = codec.loads(self._opened(fields))
        except (KeyError, ValueError, TypeError):
            log.error("skipped a live-log entry that is unreadable or not written by a node")
            return
        if command.get("k") != "genesis" and \
                not self._first_time(str(command.get("o")), command.get("t")):
            return
        mine = command.get("o") == self.origin
        token = command.get("t")
        fut = self._waiting.get(token) if mine else None
        appended = self._appending.get(token) if mine else None
        if appended is not None and not appended.done():
            if self._wait_ms:
                # Its caller hears back only once a replica holds it (WAIT),
                # and the next commands' events wait with it: sent before
                # this answer they would reach a console that cannot yet
                # read them (a youth's box before the claim's answer). One
                # wait per batch: the batch's other commands are then in.
                await asyncio.wait([appended])
            else:
                # Read back from the log, so in it: the caller need not wait
                # for its pipeline's answer too, and must not (it would then
                # answer after the next command's events; see the end).
                appended.set_result(None)
        self.applied += 1
        if command.get("k") == "genesis":
            return
        if command.get("k") == "sessions":
            if not mine:
                self.sessions.apply_journal(*command["a"])
            if fut is not None and not fut.done():
                fut.set_result(Outcome())
            return
        method = command.get("m")
        if method == "snapshot":
            # Every node forgets the same long-silent origins at the same point.
            self._seen = {o: v for o, v in self._seen.items()
                          if self._log_time - v[2] < SEEN_FORGET_SECS}
            if mine and not self._snapshot_busy:
                # Taken here, at this entry, and pickled and written beside
                # the log (aside.py): a peak's state took ~0.5 s to pickle,
                # and this loop stood still meanwhile. The caller (the
                # leader's duties) is answered once it is in Redis.
                try:
                    taken = Pickled(self._state_at(entry))
                except (OSError, codec.CodecError) as exc:  # no fork (memory, a pids limit)
                    log.warning("could not take the live-state snapshot (%s); will retry",
                                type(exc).__name__)
                else:
                    self._snapshot_busy = True
                    self._spawn(self._write_snapshot(entry, taken, fut))
                    return
            if fut is not None and not fut.done():
                fut.set_result(Outcome())
            return
        # The taking node's time, never before the previous command's: every
        # node computes the same deadlines from the same times, and a node
        # whose clock lags a little cannot make time run backwards.
        stamped = command.get("n")
        if not isinstance(stamped, int | float):
            stamped = int(entry.split("-", 1)[0]) / 1000
        self._log_time = self.clock.at = max(self._log_time, float(stamped))
        self.chat.draws = ReplayDraws(command.get("d"), self._secrets.get(token) if mine else None)
        self.chat.stats = self._stats if mine else None  # counted once, where it was taken
        out: Outcome | None = None
        error: BaseException | None = None
        try:
            out = getattr(self.chat, str(method))(*command["a"])
        except ChatError as exc:
            error = exc
        except Exception as exc:  # a bug: every node hits it alike; the caller gets "internal"
            log.exception("applying live command %s failed", method)
            error = exc
        finally:
            self.clock.at = None
            self.chat.stats = None
        if out is not None and out.emits and self._deliver is not None:
            events = Outcome(emits=out.emits)
            if method == "queue_updates":
                # Sent in slices, beside the log: a round is hundreds of pushes.
                task: asyncio.Task[None] = asyncio.ensure_future(self._deliver(events, True))
                self._rounds.add(task)
                task.add_done_callback(self._rounds.discard)
            else:
                await self._deliver(events, False)
        if method == "disconnect_node" and command["a"][0] == self.node_id and not mine \
                and self._caught_up and self._drop_all is not None:
            # (While catching up at start the declaration is about this
            # node's previous life, which held the connections, not this one.)
            # Declared lost while alive (Redis was out of reach too long): the
            # state no longer knows our connections, so their clients must
            # reconnect and resume.
            log.warning("this node was declared lost; closing its connections")
            # A task: closing a socket runs its disconnect, which waits for
            # this loop to apply it.
            self._spawn(self._drop_all())
        if fut is not None and not fut.done():
            if error is not None:
                fut.set_exception(error)
            elif out is not None:
                fut.set_result(Outcome(reply=out.reply, audits=out.audits))
            # Let the caller send its answer before the next command's events:
            # a counsellor's claim answer (which names the seat and the youth's
            # key) must reach the console before the youth's first box does.
            await asyncio.sleep(0)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._rounds.add(task)
        task.add_done_callback(self._rounds.discard)

    # -------------------------------------------------------- node duties

    async def _heartbeat(self) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(HEARTBEAT + self.node_id, self.origin, px=NODE_LOST_MS)
        pipe.sadd(NODES, self.node_id)
        pipe.eval(RENEW, 1, LEADER, self.origin, LEASE_MS)
        results = await pipe.execute()
        self.is_leader = bool(results[-1])

    async def _probe_replica(self) -> None:
        """Whether a replica is back to confirm appends (WAIT again)."""
        info = await self._redis.info("replication")
        if int(info.get("connected_slaves", 0)) >= 1:
            self._unconfirmed = False  # the next append's WAIT tells whether it confirms

    async def _duties(self) -> None:
        last_check = last_snapshot = time.monotonic()
        # Not only cancelled at close: a cancellation that a library turned
        # into a connection error would otherwise keep this loop going.
        while not self._closing:
            await asyncio.sleep(HEARTBEAT_SECS)
            if self._closing:
                return
            try:
                await self._heartbeat()
                self._reachable = True
                if self._unconfirmed:
                    await self._probe_replica()
                while self._owed_disconnects:
                    owed = self._owed_disconnects.pop(0)
                    try:
                        await self.call("disconnect", owed)
                    except LiveUnavailable:
                        self._owed_disconnects.insert(0, owed)
                        raise
                    except ChatError:
                        pass  # the state no longer knows it: nothing owed
                await self.sessions_changed()
                now = time.monotonic()
                if self.is_leader and now - last_check >= HEARTBEAT_SECS * 2:
                    last_check = now
                    await self._declare_lost()
                if self.is_leader and (now - last_snapshot >= SNAPSHOT_SECS or
                                       not await self._redis.exists(SNAPSHOT)):
                    last_snapshot = now
                    await self._submit("chat", "snapshot", [])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, LiveUnavailable):
                self._reachable = False
                # The others were cut off too (a failover takes longer than a
                # heartbeat's lifetime): judge them only once they have had a
                # heartbeat's lifetime to write again.
                last_check = time.monotonic() + NODE_LOST_MS / 1000
            except Exception:
                log.exception("live-state duties failed")

    async def _declare_lost(self) -> None:
        for raw in await self._redis.smembers(NODES):
            node = _text(raw)
            if node == self.node_id or await self._redis.exists(HEARTBEAT + node):
                continue
            log.warning("node %s stopped answering; its connections are dropped", node)
            await self.call("disconnect_node", node)
            await self._redis.srem(NODES, node)

    def _state_at(self, entry: str) -> dict[str, Any]:
        state = {k: v for k, v in vars(self.chat).items() if k not in NOT_STATE}
        return {"at": entry, "time": self._log_time, "chat": state,
                "sessions": self.sessions.snapshot(), "seen": self._seen}

    async def _write_snapshot(self, entry: str, taken: Pickled,
                              fut: asyncio.Future[Outcome] | None) -> None:
        """The whole state as of ``entry``; the log before the previous
        snapshot is no longer needed by any node (a node starting reads the
        newest snapshot, then the log after it)."""
        try:
            blob = await taken.data()
            await self._redis.set(SNAPSHOT, self._snapshot_mac(blob) + blob)
            if self._last_snapshot_id is not None:
                await self._redis.set(TRIMMED, self._last_snapshot_id)  # before, not after
                await self._redis.xtrim(LOG, minid=self._last_snapshot_id, approximate=False)
            self._last_snapshot_id = entry
        except (RedisError, OSError, codec.CodecError) as exc:
            log.warning("could not write the live-state snapshot (%s); will retry",
                        type(exc).__name__)
        finally:
            self._snapshot_busy = False
            if fut is not None and not fut.done():
                fut.set_result(Outcome())

    async def _load_snapshot(self) -> bool:
        """Start from the newest snapshot; without one, from the log's first
        entry if that is the beginning of the state. False: neither (wait)."""
        blob = await self._redis.get(SNAPSHOT)
        if blob is None:
            first = await self._redis.xrange(LOG, count=1)
            if not first:
                # An empty Redis: a new deployment, or one restarted while
                # nodes still hold the state. Those write their heartbeat
                # within a second and a snapshot soon after: give them a
                # heartbeat's lifetime before starting a new state.
                if not self._genesis_waited:
                    self._genesis_waited = True
                    await asyncio.sleep(self.settings.redis_empty_wait_secs)
                    return False
                others = {_text(n) for n in await self._redis.smembers(NODES)} - {self.node_id}
                if others or await self._redis.get(SNAPSHOT) is not None:
                    return False  # their snapshot comes: wait for it
                # Nobody else: this entry marks where the state begins.
                await self._redis.xadd(LOG, self._signed(
                    codec.dumps({"o": self.origin, "k": "genesis"})))
                return True
            fields: Any = first[0][1]
            try:
                return bool(codec.loads(self._opened(fields)).get("k") == "genesis")
            except (KeyError, ValueError, TypeError):
                log.error("the live-state log in Redis was not written by this deployment's "
                          "nodes (or their session keys differ); waiting for a snapshot")
                return False
        raw = blob if isinstance(blob, bytes) else str(blob).encode()
        mac, data = raw[:SNAPSHOT_MAC_BYTES], raw[SNAPSHOT_MAC_BYTES:]
        if not equal(mac, self._snapshot_mac(data)):
            raise RuntimeError("the live-state snapshot in Redis was not written by a node "
                               "of this deployment (or the nodes' session keys differ)")
        snap = codec.load_state(data)
        for key, value in snap["chat"].items():
            if key not in NOT_STATE:
                setattr(self.chat, key, value)
        self.sessions.restore(snap["sessions"])
        self._last_id = snap["at"]
        self._log_time = float(snap["time"])
        self._seen = snap["seen"]
        return True

    # -------------------------------------------------- direct deliveries

    async def direct(self, emit: Emit) -> None:
        """Events that must not sit in the log (a return passphrase): to a
        local connection at once; to another node's through that node's own
        small stream, sealed with a key Redis never sees, deleted as soon as
        that node has read it (and gone within DIRECT_TTL_MS if it never
        does: a node that died meanwhile; the counsellor can offer again).
        A stream, not pub/sub: a node whose connection is being remade
        reads it afterwards instead of missing it."""
        local = Outcome()
        remote: dict[str, list[Any]] = {}
        prefix = self.node_id + "."
        for conn in emit.to:
            if conn.sid.startswith(prefix):
                local.emit(emit.event, emit.payload, (conn,))
            else:
                remote.setdefault(conn.sid.split(".", 1)[0], []).append(conn)
        if local.emits and self._deliver is not None:
            await self._deliver(local, False)
        for node, conns in remote.items():
            sealed = seal(self._direct_key, codec.dumps(
                {"e": emit.event, "p": emit.payload, "to": conns}))
            for delay in (*RETRY_SECS, None):
                try:
                    pipe = self._redis.pipeline(transaction=True)
                    pipe.xadd(DIRECT + node, {"s": sealed}, maxlen=DIRECT_MAX, approximate=True)
                    pipe.pexpire(DIRECT + node, DIRECT_TTL_MS)
                    await pipe.execute()
                    break
                except (RedisError, OSError):
                    if delay is None:
                        raise LiveUnavailable(self._whom_to_call()) from None
                    await asyncio.sleep(delay)

    async def _direct_loop(self) -> None:
        key = DIRECT + self.node_id
        last = "$"  # what was left for this node's previous life is not ours
        failures = 0
        while not self._closing:
            try:
                if last == "$":
                    # Pin the starting point: "$" again after a reconnect
                    # would skip what arrived meanwhile.
                    newest: Any = await self._direct.xrevrange(key, count=1)
                    last = _text(newest[0][0]) if newest else "0-0"
                    self._direct_ready.set()
                got: Any = await self._direct.xread({key: last}, count=READ_COUNT,
                                                    block=READ_BLOCK_MS)
                failures = 0
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError):
                await asyncio.sleep(RETRY_SECS[min(failures, len(RETRY_SECS) - 1)])
                failures += 1
                continue
            for _, entries in got or ():
                for entry_id, fields in entries:
                    last = _text(entry_id)
                    await self._on_direct(fields.get(b"s", b""))
                    try:
                        await self._direct.xdel(key, entry_id)  # read: nothing rests
                    except (RedisError, OSError):
                        pass  # gone with the key's expiry anyway

    async def _on_direct(self, data: bytes) -> None:
        try:
            item = codec.loads(unseal(self._direct_key, data))
        except (SealBroken, ValueError):
            log.warning("dropped a direct event that did not open")
            return
        if self._deliver is not None:
            out = Outcome()
            out.emit(item["e"], item["p"], item["to"])
            await self._deliver(out, False)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _id_key(entry: str) -> tuple[int, int]:
    ms, _, seq = entry.partition("-")
    return int(ms), int(seq or 0)
