"""The anonymous youth namespace ``/youth`` (docs/protocol.md)."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from chatserver.domain import returning
from chatserver.domain.events import Outcome
from chatserver.errors import AlreadyStarted, BadPassphrase, RateLimited
from chatserver.transport import schemas
from chatserver.transport.context import ConnState
from chatserver.transport.namespaces import Namespace

# How many event-loop turns the status push waits for the connect answer.
PUSH_WAIT_TURNS = 100


class YouthNamespace(Namespace):
    _pushes: ClassVar[set[asyncio.Task[None]]] = set()  # held until done (asyncio keeps weak refs)
    EVENTS: ClassVar[dict[str, tuple[str, str]]] = {
        "status": ("other", "status"),
        "start": ("other", "start"),
        "resume": ("other", "resume"),
        "send": ("send", "send"),
        "delivered": ("other", "delivered"),
        "typing": ("other", "typing"),
        "pause": ("other", "pause"),
        "leave": ("other", "leave"),
        "choose": ("other", "choose"),
        "consent": ("other", "consent"),
        "remove_member": ("other", "remove_member"),
    }

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        self.connect_anonymous(sid, environ, self.ctx.addresses)
        # The page cannot go past its safety screen without the status; on a
        # slow phone (2 s round trips) asking for it costs one more. So it is
        # sent right behind the connect answer (docs/protocol.md, `status`).
        task = asyncio.create_task(self._push_status(sid))
        self._pushes.add(task)
        task.add_done_callback(self._pushes.discard)

    async def _push_status(self, sid: str) -> None:
        # python-socketio sends the connect answer after this handler returns
        # and only then counts the sid as connected: an emit before that
        # would go nowhere. Wait for it (a few loop turns), or for its end.
        manager = self.server.manager
        for _ in range(PUSH_WAIT_TURNS):
            if manager.is_connected(sid, self.namespace):
                await self.emit("status", self.ctx.chat.status(), to=sid)
                return
            if sid not in self.ctx.conns:
                return
            await asyncio.sleep(0)

    async def status(self, sid: str, state: ConnState, data: Any) -> Outcome:
        schemas.empty(data)
        return Outcome(reply=self.ctx.chat.status())

    async def start(self, sid: str, state: ConnState, data: Any) -> Outcome:
        kx_pk, profile, secret = schemas.start(data, self.ctx.settings)
        conn = self.conn(sid)
        if self.ctx.chat.has_conversation(conn):
            raise AlreadyStarted()
        returning_to = None
        if secret is not None:
            if not self.ctx.chat.is_open():  # never spend a code when nobody can answer
                # ... but the refusal is counted as unmet demand, so it takes
                # from the address's start budget like any other start.
                if state.address_key is not None:
                    _check_wait(self.ctx.addresses.hit(state.address_key))
                # raises NobodyOnDuty
                return await self.ctx.live.call("start", conn, kx_pk, profile)
            returning_to = (await self.redeem(state, secret)).staff_id
        elif state.address_key is not None:
            _check_wait(self.ctx.addresses.hit(state.address_key))
        out = await self.ctx.live.call("start", conn, kx_pk, profile, returning_to)
        if returning_to is not None:
            # That a code was redeemed, and nothing that ties it to where it
            # was issued: no row id, no conversation (docs/design/audit.md,
            # "Returns leave no link").
            out.audit("youth", "return_redeemed")
        return out

    async def redeem(self, state: ConnState, secret: str) -> returning.Redeemed:
        """Three tries per connection, a per-address budget, a global failure
        budget that slows everyone down before refusing; Argon2 off the loop."""
        ctx = self.ctx
        state.return_tries += 1
        if state.return_tries > ctx.settings.return_tries_per_connection:
            raise RateLimited({"retry_after_secs": 60})
        if state.address_key is not None:
            _check_wait(ctx.return_addresses.hit(state.address_key))
        _check_wait(ctx.return_failures.retry_after())
        delay = ctx.return_failures.delay()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            return await returning.redeem(secret, kdf=ctx.kdf, store=ctx.store, clock=ctx.clock)
        except BadPassphrase:
            ctx.return_failures.fail()
            await ctx.audit.record("youth", "return_failed")
            raise

    async def choose(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, wait = schemas.choose(data)
        return await self.ctx.live.call("choose", self.conn(sid), conv, wait)

    async def consent(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, request, accept = schemas.request_answer(data, "accept")
        return await self.ctx.live.call("consent", self.conn(sid), conv, request, accept)

    async def remove_member(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, member = schemas.member_ref(data)
        return await self.ctx.live.call("remove_member", self.conn(sid), conv, member)

    async def pause(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, paused = schemas.pause(data)
        return await self.ctx.live.call("pause", self.conn(sid), conv, paused)

    async def leave(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, reason = schemas.leave(data)
        return await self.ctx.live.call("leave", self.conn(sid), conv, reason)



def _check_wait(wait: float) -> None:
    if wait > 0:
        raise RateLimited({"retry_after_secs": max(1, round(wait))})
