"""The anonymous youth namespace ``/youth`` (docs/protocol.md)."""

from __future__ import annotations

from typing import Any, ClassVar

from socketio.exceptions import ConnectionRefusedError as Refused

from chatserver.domain.events import Outcome
from chatserver.errors import ChatError, RateLimited
from chatserver.transport import schemas
from chatserver.transport.context import ConnState
from chatserver.transport.namespaces import Namespace
from chatserver.transport.ratelimit import client_address


class YouthNamespace(Namespace):
    EVENTS: ClassVar[dict[str, tuple[str, str]]] = {
        "status": ("other", "status"),
        "start": ("other", "start"),
        "resume": ("other", "resume"),
        "send": ("send", "send"),
        "delivered": ("other", "delivered"),
        "typing": ("other", "typing"),
        "pause": ("other", "pause"),
        "leave": ("other", "leave"),
    }

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        try:
            self.check_origin(environ)
        except ChatError as exc:
            raise Refused(exc.code) from None
        state = ConnState(buckets=self.ctx.new_buckets())
        request = environ.get("aiohttp.request")
        address = client_address(request, self.ctx.settings.client_addr_header) \
            if request is not None else None
        if address:
            # Hashed at once; the raw address is not kept anywhere.
            state.address_key = self.ctx.addresses.key_for(address)
        self.ctx.conns[sid] = state

    async def status(self, sid: str, state: ConnState, data: Any) -> Outcome:
        schemas.empty(data)
        return Outcome(reply=self.ctx.chat.status())

    async def start(self, sid: str, state: ConnState, data: Any) -> Outcome:
        kx_pk, profile = schemas.start(data, self.ctx.settings)
        if state.address_key is not None:
            wait = self.ctx.addresses.hit(state.address_key)
            if wait > 0:
                raise RateLimited({"retry_after_secs": max(1, round(wait))})
        return self.ctx.chat.start(self.conn(sid), kx_pk, profile)

    async def resume(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, member, secret = schemas.resume(data)
        return self.ctx.chat.resume(self.conn(sid), conv, member, secret)

    async def send(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, epoch, seq, boxes = schemas.send(data, self.ctx.settings)
        return self.ctx.chat.send(self.conn(sid), conv, epoch, seq, boxes)

    async def delivered(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, sender, seq = schemas.delivered(data)
        return self.ctx.chat.delivered(self.conn(sid), conv, sender, seq)

    async def typing(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, active = schemas.typing(data)
        return self.ctx.chat.typing(self.conn(sid), conv, active)

    async def pause(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, paused = schemas.pause(data)
        return self.ctx.chat.pause(self.conn(sid), conv, paused)

    async def leave(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, reason = schemas.leave(data)
        return self.ctx.chat.leave(self.conn(sid), conv, reason)

