"""The liaison namespace ``/liaison``: an on-call police, health or social
services liaison who holds an invite link (docs/design/invites.md).

No account and no cookie: the invite is the credential, single use and short
lived; the youth must consent before the liaison is seated.
"""

from __future__ import annotations

from typing import Any, ClassVar

from socketio.exceptions import ConnectionRefusedError as Refused

from chatserver.domain.events import Outcome
from chatserver.errors import ChatError, RateLimited
from chatserver.transport import schemas
from chatserver.transport.context import ConnState
from chatserver.transport.namespaces import Namespace
from chatserver.transport.ratelimit import client_address


class LiaisonNamespace(Namespace):
    EVENTS: ClassVar[dict[str, tuple[str, str]]] = {
        "join": ("other", "join"),
        "resume": ("other", "resume"),
        "send": ("send", "send"),
        "delivered": ("other", "delivered"),
        "typing": ("other", "typing"),
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
            state.address_key = self.ctx.invite_addresses.key_for(address)
        self.ctx.conns[sid] = state

    async def join(self, sid: str, state: ConnState, data: Any) -> Outcome:
        invite, kx_pk, mac = schemas.join(data)
        state.invite_tries += 1
        if state.invite_tries > self.ctx.settings.invite_tries_per_connection:
            raise RateLimited({"retry_after_secs": 60})
        if state.address_key is not None:
            wait = self.ctx.invite_addresses.hit(state.address_key)
            if wait > 0:
                raise RateLimited({"retry_after_secs": max(1, round(wait))})
        return self.ctx.chat.join(self.conn(sid), invite, kx_pk, mac)

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

    async def leave(self, sid: str, state: ConnState, data: Any) -> Outcome:
        return self.ctx.chat.liaison_leave(self.conn(sid), schemas.conversation_only(data))
