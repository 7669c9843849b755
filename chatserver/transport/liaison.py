"""The liaison namespace ``/liaison``: an on-call police, health or social
services liaison who holds an invite code (docs/design/invites.md).

No account and no cookie: the invite is the credential, single use and short
lived; the youth must consent before the liaison is seated.
"""

from __future__ import annotations

from typing import Any, ClassVar

from chatserver.domain.events import Outcome
from chatserver.errors import RateLimited
from chatserver.transport import schemas
from chatserver.transport.context import ConnState
from chatserver.transport.namespaces import Namespace


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
        self.connect_anonymous(sid, environ, self.ctx.invite_addresses)

    async def join(self, sid: str, state: ConnState, data: Any) -> Outcome:
        invite, kx_pk, mac = schemas.join(data)
        state.invite_tries += 1
        if state.invite_tries > self.ctx.settings.invite_tries_per_connection:
            raise RateLimited({"retry_after_secs": 60})
        if state.address_key is not None:
            wait = self.ctx.invite_addresses.hit(state.address_key)
            if wait > 0:
                raise RateLimited({"retry_after_secs": max(1, round(wait))})
        return await self.ctx.live.call("join", self.conn(sid), invite, kx_pk, mac)

    async def leave(self, sid: str, state: ConnState, data: Any) -> Outcome:
        return await self.ctx.live.call("liaison_leave", self.conn(sid),
                                        schemas.conversation_only(data))
