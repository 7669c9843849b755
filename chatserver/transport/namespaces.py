"""The shared shape of a socket.io namespace: one dispatch table, rate limits,
and error mapping in one place. Handlers are thin: validate, call one domain
function, return its reply (docs/style.md, "Thin transport").
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import socketio
from socketio.exceptions import ConnectionRefusedError as Refused

from chatserver.domain.events import Conn, Outcome
from chatserver.errors import BadOrigin, ChatError, RateLimited, ServerFull, UnknownEvent
from chatserver.transport import schemas
from chatserver.transport.context import ConnState, Context
from chatserver.transport.errors import error_reply, internal_reply
from chatserver.transport.ratelimit import AddressLimiter, address_group, client_address

log = logging.getLogger(__name__)

Handler = Callable[[str, ConnState, Any], Awaitable[Outcome]]

# An audit entry for rate-limit trips at most once a minute per connection:
# a flood must not become a flood of audit rows.
RATE_TRIP_AUDIT_INTERVAL_SECS = 60.0
LIFECYCLE = frozenset({"connect", "disconnect"})


class Namespace(socketio.AsyncNamespace):  # type: ignore[misc]  # socketio is untyped
    # event name -> (bucket name, handler method name)
    EVENTS: ClassVar[dict[str, tuple[str, str]]] = {}

    def __init__(self, namespace: str, ctx: Context) -> None:
        super().__init__(namespace)
        self.ctx = ctx

    def conn(self, sid: str) -> Conn:
        return Conn(self.namespace, sid)

    def check_origin(self, environ: dict[str, Any]) -> None:
        # Cross-site WebSocket hijacking: only our own pages may connect.
        if environ.get("HTTP_ORIGIN") != self.ctx.settings.public_origin:
            raise BadOrigin()

    async def trigger_event(self, event: Any, *args: Any) -> Any:
        sid = args[0]
        if not isinstance(event, str):
            return error_reply(UnknownEvent())
        if event in LIFECYCLE and not self.server.manager.is_connected(sid, self.namespace):
            # The server's own connect/disconnect: it runs while the sid is
            # pending (not yet, or no longer, connected). A *client* can also
            # emit an event named "connect"; that arrives while connected and
            # must never reach the lifecycle handlers (it would reset limits).
            return await super().trigger_event(event, *args)
        data = args[1] if len(args) > 1 else None
        return await self.dispatch(sid, event, data)

    async def dispatch(self, sid: str, event: str, data: Any) -> dict[str, Any]:
        state = self.ctx.conns.get(sid)
        entry = self.EVENTS.get(event)
        try:
            if state is None:
                raise UnknownEvent()
            if entry is None:
                raise UnknownEvent()
            bucket_name, method = entry
            await self.rate_limit(sid, state, bucket_name)
            await self.before(sid, state, event)
            outcome: Outcome = await getattr(self, method)(sid, state, data)
        except ChatError as exc:
            return error_reply(exc)
        except Exception:
            log.exception("handler for %s failed", event if entry else "unknown event")
            return internal_reply()
        if self.ctx.live.replicated and not outcome.emits:
            # Its events went out as the log was applied; the answer goes now,
            # before the next command's events, and the audit entries right
            # after it (recording them awaits the database).
            self.ctx.apply_later(outcome)
        else:
            await self.ctx.apply(outcome)
        return {"ok": True, **outcome.reply}

    async def before(self, sid: str, state: ConnState, event: str) -> None:
        """Per-event checks of a namespace (staff: the session is still valid)."""

    async def rate_limit(self, sid: str, state: ConnState, bucket_name: str) -> None:
        now = self.ctx.clock.now()
        wait = self.ctx.take_token(state, bucket_name, now)
        if wait <= 0:
            return
        if now - state.rate_trip_logged_at >= RATE_TRIP_AUDIT_INTERVAL_SECS:
            state.rate_trip_logged_at = now
            actor = state.staff.username if state.staff else "youth"
            await self.ctx.apply(_audit_only(actor, "rate_limited", bucket_name))
        raise RateLimited({"retry_after_secs": max(1, round(wait))})

    # Events every member kind shares (youth, staff, liaison): one definition.

    async def send(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, epoch, seq, boxes = schemas.send(data, self.ctx.settings)
        return await self.ctx.live.call("send", self.conn(sid), conv, epoch, seq, boxes)

    async def delivered(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, sender, seq = schemas.delivered(data)
        return await self.ctx.live.call("delivered", self.conn(sid), conv, sender, seq)

    async def typing(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, active = schemas.typing(data)
        return await self.ctx.live.call("typing", self.conn(sid), conv, active)

    async def resume(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, member, secret = schemas.resume(data)
        return await self.ctx.live.call("resume", self.conn(sid), conv, member, secret,
                                        state.staff)

    def connect_anonymous(self, sid: str, environ: dict[str, Any],
                          limiter: AddressLimiter) -> None:
        """Accept a connection that has no account (youth, liaison): our Origin
        only, and not past ``max_anonymous_connections`` (then refused with
        whom to call instead: never a spinner, docs/protocol.md); the client
        address is HMAC-ed at once under ``limiter``'s key."""
        try:
            self.check_origin(environ)
        except ChatError as exc:
            raise Refused(exc.code) from None
        sio = self.ctx.sio
        if sio is not None and sio.admission is not None and sio.admission.full():
            status = self.ctx.chat.status()
            raise Refused(ServerFull.code, {key: status[key] for key in
                                            ("hours", "alternatives", "emergency")})
        state = ConnState()
        request = environ.get("aiohttp.request")
        address = client_address(request, self.ctx.settings) if request is not None else None
        if address:
            state.address_key = limiter.key_for(address_group(address, self.ctx.settings))
        self.ctx.conns[sid] = state
        _trim_environ(environ)

    async def on_disconnect(self, sid: str, *reason: Any) -> None:
        self.ctx.conns.pop(sid, None)
        self.ctx.ops_watchers.discard(sid)
        await self.ctx.apply(await self.ctx.live.disconnect(self.conn(sid)))


# What an anonymous connection's environ keeps after connect: engine.io and
# socket.io hold this dict (a copy of every request header) for the
# connection's whole life, and nothing reads it again (docs/performance.md).
ENVIRON_KEPT = ("HTTP_ORIGIN", "aiohttp.request")


def _trim_environ(environ: dict[str, Any]) -> None:
    kept = {k: environ[k] for k in ENVIRON_KEPT if k in environ}
    environ.clear()  # a dict never shrinks on delete; clear() frees its table
    environ.update(kept)


def _audit_only(actor: str, action: str, bucket: str) -> Outcome:
    out = Outcome()
    out.audit(actor, action, bucket=bucket)
    return out
