"""The composition root: ``create_app(settings)`` builds every service once and
wires it into aiohttp and python-socketio. No module globals; every background
task is kept in a set and cancelled on shutdown (docs/style.md, "One composition root").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web
from redis.exceptions import RedisError

from chatserver import gc_policy, logs, startup
from chatserver.crypto.passphrase import PassphraseKdf, check_word_lists
from chatserver.domain import audit_retention
from chatserver.domain.audit import ACTOR_SYSTEM, AuditLog, AuditNotSealed
from chatserver.domain.auth import LoginGuard
from chatserver.domain.clock import Clock, SystemClock
from chatserver.domain.conversations import LIAISON_NS, STAFF_NS, YOUTH_NS, ChatService
from chatserver.domain.events import Conn, Outcome
from chatserver.domain.partner_bank import PartnerBank
from chatserver.domain.referrals import load_directory
from chatserver.domain.sessions import SessionStore
from chatserver.domain.stats import StatsCounter
from chatserver.live import open_live
from chatserver.settings import ConfigError, Settings
from chatserver.storage import open_store
from chatserver.transport import admission, http, wire_json
from chatserver.transport.context import Context
from chatserver.transport.liaison import LiaisonNamespace
from chatserver.transport.manager import RoomIndexedManager
from chatserver.transport.metrics import serve_metrics
from chatserver.transport.packet_queue import use_packet_queues
from chatserver.transport.partners_api import partners_changed
from chatserver.transport.ratelimit import AddressLimiter, FailureBudget
from chatserver.transport.server import ChatSocketServer
from chatserver.transport.staff import StaffNamespace, session_token
from chatserver.transport.youth import YouthNamespace

log = logging.getLogger(__name__)

SESSIONS_SHARE_SECS = 1.0
SHUTDOWN_GRACE_SECS = 5.0
EXIT_GRACE_SECS = 30.0
JOBS_STOP_SECS = 5.0
TICK_SECS = 0.5  # grace and pause deadlines are honoured to within this
OPS_PUSH_SECS = 2.0
HISTORY_SAMPLE_SECS = 60.0
ADDRESS_SWEEP_SECS = 300.0
HANDSHAKE_SWEEP_SECS = 1.0  # unjoined handshakes close within handshake_join_secs + this
# How often the database's directory version is compared with this node's
# copy (docs/design/partners.md): one one-row read.
PARTNERS_REFRESH_SECS = 5.0
RETURN_PURGE_SECS = 3600.0  # expired return codes are deleted hourly (docs/security-design.md)
LISTEN_BACKLOG = 2048  # the kernel caps it at net.core.somaxconn
STAFF_NAMESPACE = web.AppKey("staff_namespace", StaffNamespace)
BODY_MAX_BYTES = 64 * 1024  # no HTTP route takes more; socket.io has its own bound


def create_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    clock = clock or SystemClock()
    check_word_lists()  # the return-code word lists are checked at start-up, not at a return
    stats = StatsCounter(clock)
    ctx = Context(
        settings=settings, clock=clock,
        chat=ChatService(settings, clock, stats=stats),
        sessions=SessionStore.from_settings(settings, clock),
        login_guard=LoginGuard(settings.password_profile),
        stats=stats,
        addresses=AddressLimiter(clock, settings.rate_starts_per_hour),
        login_addresses=AddressLimiter(clock, settings.rate_logins_per_hour),
        kdf=PassphraseKdf(settings.passphrase_profile, settings.require_secrets().pepper),
        return_addresses=AddressLimiter(clock, settings.rate_returns_per_hour),
        invite_addresses=AddressLimiter(clock, settings.rate_invites_per_hour),
        return_failures=FailureBudget(clock, settings.return_failures_per_min),
    )
    ctx.live = open_live(settings, ctx.chat, ctx.sessions, stats)
    lib_logger = logs.library_logger()

    def handshake_group(environ: dict[str, Any]) -> str | None:
        # A console with a live staff session is not counted: the centre's
        # counsellors may all sit behind one office address.
        if ctx.sessions.alive(session_token(environ.get("HTTP_COOKIE", ""))):
            return None
        return admission.handshake_group(environ, settings)

    # Binary socket.io packets are refused at the door, and every engine.io
    # session is admitted by address group and in total (transport/server.py).
    sio = ChatSocketServer(
        admission=admission.Admission(settings),
        address_group_of=handshake_group,
        node_id=settings.node_id,
        # Only our three namespaces: the default "/" has no handler, no
        # Origin check, and a session joined to it escaped the unjoined sweep.
        namespaces=[YOUTH_NS, STAFF_NS, LIAISON_NS],
        async_mode="aiohttp",
        cors_allowed_origins=[settings.public_origin],
        cookie=None,  # no engine.io cookie: youths carry nothing
        logger=lib_logger,
        engineio_logger=lib_logger,
        max_http_buffer_size=settings.max_event_bytes,
        async_handlers=settings.socketio_async_handlers,
        ping_interval=settings.ping_interval_secs,
        ping_timeout=settings.ping_timeout_secs,
        json=wire_json,  # decoder/encoder built once, not per packet
        # O(1) disconnect instead of a walk of every room (decision 0005).
        client_manager=RoomIndexedManager(),
    )
    if settings.engineio_lean_queue:
        use_packet_queues(sio.eio)
    ctx.sio = sio
    sio.register_namespace(YouthNamespace(YOUTH_NS, ctx))
    app_staff = StaffNamespace(STAFF_NS, ctx)
    sio.register_namespace(app_staff)
    sio.register_namespace(LiaisonNamespace(LIAISON_NS, ctx))

    app = web.Application(client_max_size=BODY_MAX_BYTES, middlewares=[http.middleware])
    app[http.CONTEXT] = ctx
    app[STAFF_NAMESPACE] = app_staff
    sio.attach(app)
    http.add_routes(app)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_close_sockets)
    app.cleanup_ctx.append(_metrics)
    return app


async def _close_sockets(app: web.Application) -> None:
    """A node that stops closes every socket at once: its pages reconnect
    (to another node, behind a balancer) and resume, instead of waiting for
    engine.io's ping timeout (tens of seconds) while nothing answers them."""
    sio = app[http.CONTEXT].sio
    if sio is not None:
        log.info("stopping: closing %d connections", len(sio.eio.sockets))
        for eio_sid in list(sio.eio.sockets):
            await sio.close_now(eio_sid)


async def _exit_if_stuck(app: web.Application) -> None:
    """``serve`` only: once the stop has begun, the process ends within
    EXIT_GRACE_SECS even if something keeps the loop from finishing (under
    load a node stopped by a rolling restart was seen to hang past a minute,
    which holds up the next node's restart). A normal stop takes a few
    seconds: the sockets close at once, the rest is bounded."""
    timer = threading.Timer(EXIT_GRACE_SECS, os._exit, args=(0,))
    timer.daemon = True
    timer.start()


async def _metrics(app: web.Application) -> AsyncIterator[None]:
    async for _ in serve_metrics(app[http.CONTEXT]):
        yield


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    ctx = app[http.CONTEXT]
    sio = ctx.sio
    if sio is None:
        raise RuntimeError("create_app attaches socket.io before start-up")
    try:
        ctx.store = await open_store(ctx.settings)
    except asyncpg.InsufficientPrivilegeError:
        # The runtime role may not change the schema: a release with a new
        # migration needs `store migrate` as the owner first (docs/operations.md,
        # "Upgrading"). One line, not a traceback.
        raise startup.CannotStart(
            "the database needs a migration this role may not run: run `chatserver store "
            "migrate` as the owner role first (docs/operations.md, \"Upgrading\")") from None
    ctx.audit = AuditLog(ctx.store, ctx.clock, ctx.settings.require_secrets().audit_key)
    # A log that ends in unkeyed entries is either from before the audit key
    # or one whose keyed part was removed; only the operator can tell, with
    # `chatserver audit seal` (docs/design/audit.md, "Migration"). Refused
    # here rather than at the first staff action.
    if await ctx.audit.unsealed():
        await ctx.store.close()
        raise startup.CannotStart(str(AuditNotSealed()))
    # The partner directory: seeded from the partners file into an empty
    # database, then read from it (docs/design/partners.md).
    ctx.partners = PartnerBank(ctx.store, ctx.audit, ctx.clock)
    try:
        await ctx.partners.open(lambda: load_directory(ctx.settings.partners_file).everything(),
                                ACTOR_SYSTEM)
    except ConfigError as exc:
        await ctx.store.close()
        raise startup.CannotStart(str(exc)) from None
    ctx.partners.listen(partners_changed(ctx))
    # The dummy hash for unknown usernames is made now, not on the first such
    # login, so that login's timing reveals nothing from the very start.
    await ctx.login_guard.warm_up()
    tasks: set[asyncio.Task[None]] = set()

    def every(secs: float, job: Callable[[], Awaitable[None]], name: str) -> None:
        task = asyncio.create_task(_repeat(secs, job, name), name=name)
        tasks.add(task)

    async def push_ops() -> None:
        if ctx.ops_watchers:
            out = Outcome()  # one event, encoded once, to every watching operator
            out.emit("ops", ctx.chat.ops_snapshot(), [Conn(STAFF_NS, sid)
                                                      for sid in ctx.ops_watchers])
            await ctx.apply(out)

    async def sample() -> None:
        ctx.chat.sample_history()

    async def flush_stats() -> None:
        await ctx.stats.flush(ctx.store)

    async def purge_returns() -> None:
        await ctx.store.purge_return_codes(ctx.clock.now())

    async def sweep() -> None:
        ctx.addresses.sweep()
        ctx.return_addresses.sweep()
        ctx.invite_addresses.sweep()
        ctx.login_addresses.sweep()
        ctx.sessions.purge_expired()

    gc_task = gc_policy.install(ctx.settings, lambda: ctx.websockets_opened)  # decisions 0002, 0007
    if gc_task is not None:
        tasks.add(gc_task)
    async def deliver(out: Outcome, queue_round: bool) -> None:
        if queue_round:
            # Sent in slices with a pause between: at a national peak one
            # round is hundreds of pushes, and sent at once (or back to back)
            # they held up every relayed message.
            await ctx.apply(out, slice_size=ctx.settings.queue_round_slice_packets,
                            slice_pause=ctx.settings.queue_round_pause_ms / 1000,
                            still_current=ctx.chat.queue_push_current)
        else:
            await ctx.apply(out)

    async def drop_all() -> None:
        await _close_sockets(app)

    try:
        await ctx.live.start(deliver, drop_all)
    except (OSError, RuntimeError, RedisError) as exc:
        await ctx.store.close()
        raise startup.CannotStart(f"live state: {exc}") from None

    async def deadlines() -> None:
        out = await ctx.live.timer("tick")  # on several nodes, one runs it for all
        if out is not None:
            await ctx.apply(out)

    every(TICK_SECS, deadlines, "deadlines")

    async def queue_round() -> None:
        out = await ctx.live.timer("queue_updates")
        if out is not None:
            await deliver(out, True)

    # Staff sessions made or ended here reach the other nodes within this
    # (login and logout tell them at once).
    every(SESSIONS_SHARE_SECS, ctx.live.sessions_changed, "sessions")

    every(ctx.settings.queue_push_interval_secs, queue_round, "queue")
    every(OPS_PUSH_SECS, push_ops, "ops")
    every(HISTORY_SAMPLE_SECS, sample, "history")
    every(ctx.settings.stats_flush_secs, flush_stats, "stats")
    every(ADDRESS_SWEEP_SECS, sweep, "addresses")

    async def close_unjoined() -> None:
        await sio.close_unjoined()

    every(HANDSHAKE_SWEEP_SECS, close_unjoined, "handshakes")
    every(RETURN_PURGE_SECS, purge_returns, "returns")

    async def prune_audit() -> None:
        await audit_retention.prune(ctx.store, ctx.audit, ctx.clock,
                                    ctx.settings.require_secrets().audit_key,
                                    ctx.settings.audit_retention_days)

    # Retention (docs/design/audit.md, "Retention"): daily, and once at start.
    every(audit_retention.PRUNE_EVERY_SECS, prune_audit, "audit-retention")

    async def refresh_partners() -> None:
        await ctx.partners.refresh()

    # Changes by another node or the CLI reach this node's consoles within this.
    every(PARTNERS_REFRESH_SECS, refresh_partners, "partners")
    # A staff socket with no events would otherwise outlive its session, and a
    # disabled account's console could go on relaying (StaffNamespace.before).
    every(min(ctx.settings.staff_recheck_secs, ctx.settings.session_idle_secs / 2),
          app[STAFF_NAMESPACE].close_stale, "staff-recheck")
    ctx.chat.sample_history()
    await purge_returns()
    await prune_audit()
    unverified = len(ctx.directory.unverified())
    if unverified:
        log.warning("%d referral directory entries are not marked verified: check them "
                    "with the partners before go-live (docs/operations.md)", unverified)
    log.info(startup.ready_message(ctx.settings, len(await ctx.store.list_staff())))
    try:
        yield
    finally:
        # Each step is logged: an operator whose stop takes long (a rolling
        # restart waits on it) sees which one.
        log.info("stopping: background jobs")
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: a job stuck below asyncio must not hold the stop (a
            # rolling restart waits on it); its name is logged.
            _, stuck = await asyncio.wait(tasks, timeout=JOBS_STOP_SECS)
            for task in stuck:
                log.warning("stopping: background job %s did not end", task.get_name())
        log.info("stopping: statistics")
        with contextlib.suppress(Exception):
            await ctx.stats.flush(ctx.store)
        log.info("stopping: live state")
        await ctx.live.close()
        log.info("stopping: database")
        await ctx.store.close()
        log.info("stopped")


async def _repeat(secs: float, job: Callable[[], Awaitable[None]], name: str) -> None:
    while True:
        await asyncio.sleep(secs)
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background job %s failed", name)


def run(settings: Settings) -> None:
    """Serve until stopped. Raises ``startup.CannotListen`` (the port is taken,
    say) before anything starts or says "ready"."""
    logs.configure(settings.log_level)
    # backlog: a reconnect storm of thousands overflows the default 128 and
    # clients then wait for SYN retransmits (docs/performance.md, "Listen backlog").
    sockets = startup.listen_sockets(settings.host, settings.port, LISTEN_BACKLOG)
    app = create_app(settings)
    app.on_shutdown.append(_exit_if_stuck)
    # access_log=None: aiohttp's access log writes client addresses (promise 2).
    # shutdown_timeout: the sockets are closed at once on shutdown
    # (_close_sockets); aiohttp's default would then wait up to 60 s for the
    # WebSocket handlers of clients that keep sending to notice.
    web.run_app(app, sock=sockets, access_log=None, print=None, handle_signals=True,
                backlog=LISTEN_BACKLOG, shutdown_timeout=SHUTDOWN_GRACE_SECS)
