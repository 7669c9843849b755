"""The staff namespace ``/staff``: counsellors, operators (docs/protocol.md).

A connection needs a valid session cookie and our own ``Origin``; the session is
checked again before every event, so logout or expiry takes effect at once.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, ClassVar

from socketio.exceptions import ConnectionRefusedError as Refused

from chatserver.domain import returning
from chatserver.domain.clock import to_ms
from chatserver.domain.events import Emit, Outcome
from chatserver.domain.model import StaffRef
from chatserver.errors import ChatError, NotAllowed, SessionRequired, UnknownPartner
from chatserver.transport import schemas
from chatserver.transport.context import ConnState
from chatserver.transport.namespaces import Namespace

SESSION_COOKIE = "__Host-session"
# A session token is 32 random bytes in base64url (crypto.tokens.new_secret).
SESSION_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
# Browsers send at most a few KB of cookies; past this it is not ours to parse.
MAX_COOKIE_HEADER_CHARS = 8192
OPS_ROLES = frozenset({"operator", "admin"})
RELAY_EVENTS = frozenset({"send", "delivered", "typing"})


class StaffNamespace(Namespace):
    EVENTS: ClassVar[dict[str, tuple[str, str]]] = {
        "duty": ("other", "duty"),
        "claim": ("other", "claim"),
        "take_next": ("other", "take_next"),
        "end": ("other", "end"),
        "resume": ("other", "resume"),
        "send": ("send", "send"),
        "delivered": ("other", "delivered"),
        "typing": ("other", "typing"),
        "ops_watch": ("other", "ops_watch"),
        "offer_return": ("other", "offer_return"),
        "colleagues": ("other", "colleagues"),
        "transfer": ("other", "transfer"),
        "transfer_answer": ("other", "transfer_answer"),
        "invite_create": ("other", "invite_create"),
        "admit": ("other", "admit"),
        "remove_member": ("other", "remove_member"),
        "partners": ("other", "partners"),
        "refer": ("other", "refer"),
        "tag": ("other", "tag"),
        "handover_key": ("other", "handover_key"),
        "queue_sync": ("other", "queue_sync"),
        "reattach": ("other", "reattach"),
    }

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        try:
            self.check_origin(environ)
            token = session_token(environ.get("HTTP_COOKIE", ""))
            staff = await self.ctx_staff(token)
        except ChatError as exc:
            raise Refused(exc.code) from None
        state = ConnState(staff=staff, session_token=token)
        self.ctx.conns[sid] = state
        if staff.role == "counsellor":
            try:
                await self.ctx.apply(await self.ctx.live.call("staff_connected", staff,
                                                              self.conn(sid)))
            except BaseException:
                # socket.io will not call on_disconnect for a connect that
                # failed: forget the socket here, or its state stays forever.
                self.ctx.conns.pop(sid, None)
                raise

    async def ctx_staff(self, token: str | None) -> StaffRef:
        if not token:
            raise SessionRequired()
        session = self.ctx.sessions.get(token)
        if session is None:
            raise SessionRequired()
        record = await self.ctx.store.get_by_id(session.staff_id)
        if record is None or record.disabled:
            raise SessionRequired()
        return StaffRef(id=record.id, username=record.username, role=record.role,
                        alias=record.alias, capacity=record.capacity,
                        languages=record.languages)

    async def before(self, sid: str, state: ConnState, event: str) -> None:
        session = self.ctx.sessions.get(state.session_token)
        # The account is read again before every staff action (claim, duty,
        # invite…): a disable from the CLI, in another process, must stop an open
        # console at once. The relay events of chats it already holds are half
        # of all traffic and a read is a thread hop (docs/performance.md): for
        # them the session suffices, and the app's sweep (close_stale) reads
        # every disabled account once every staff_recheck_secs and closes
        # their consoles, idle or not.
        if session is not None and event in RELAY_EVENTS:
            return
        record = await self.ctx.store.get_by_id(session.staff_id) if session else None
        if session is None or record is None or record.disabled:
            if session is not None:
                self.ctx.sessions.revoke_staff(session.staff_id)
            await self.disconnect(sid)
            raise SessionRequired()
        if state.staff is not None and record.languages != state.staff.languages:
            # `chatserver staff languages` ran since the connect: take next
            # uses the new list from now on.
            state.staff = dataclasses.replace(state.staff, languages=record.languages)

    async def close_stale(self) -> None:
        """Close consoles whose session expired or whose account was disabled
        (by the CLI, which cannot reach this process's sessions)."""
        disabled = await self.ctx.store.disabled_staff_ids()
        for sid in self.ctx.staff_sids():
            state = self.ctx.conns.get(sid)
            if state is None or state.staff is None:
                continue
            if state.staff.id in disabled:
                self.ctx.sessions.revoke_staff(state.staff.id)
            elif self.ctx.sessions.alive(state.session_token):
                continue
            await self.disconnect(sid)

    def staff(self, state: ConnState) -> StaffRef:
        if state.staff is None:  # connect always sets it; a guard for the type checker
            raise SessionRequired()
        return state.staff

    async def duty(self, sid: str, state: ConnState, data: Any) -> Outcome:
        return await self.ctx.live.call("duty", self.staff(state), schemas.on_flag(data))

    async def claim(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, kx_pk, offline_ok = schemas.claim(data)
        return await self.ctx.live.call("claim", self.staff(state), self.conn(sid), conv, kx_pk,
                                        offline_ok)

    async def take_next(self, sid: str, state: ConnState, data: Any) -> Outcome:
        kx_pk = schemas.take_next(data)
        return await self.ctx.live.call("claim", self.staff(state), self.conn(sid), None, kx_pk)

    async def reattach(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, kx_pk = schemas.reattach(data)
        return await self.ctx.live.call("reattach", self.staff(state), self.conn(sid), conv,
                                        kx_pk)

    async def end(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv = schemas.conversation_only(data)
        return await self.ctx.live.call("end", self.staff(state), self.conn(sid), conv)

    async def queue_sync(self, sid: str, state: ConnState, data: Any) -> Outcome:
        schemas.obj(data, frozenset())  # exactly {}
        return await self.ctx.live.call("queue_sync", self.staff(state), self.conn(sid))

    async def ops_watch(self, sid: str, state: ConnState, data: Any) -> Outcome:
        on = schemas.on_flag(data)
        if self.staff(state).role not in OPS_ROLES:
            raise NotAllowed()
        out = Outcome()
        if on:
            self.ctx.ops_watchers.add(sid)
            out.emit("ops", self.ctx.chat.ops_snapshot(), (self.conn(sid),))
        else:
            self.ctx.ops_watchers.discard(sid)
        return out


    async def offer_return(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv = schemas.conversation_only(data)
        staff = self.staff(state)
        # Checked before hashing; the words come from the page language's list.
        _, page_language = self.ctx.chat.return_target(staff, self.conn(sid), conv)
        issued = await returning.issue(staff.id, page_language=page_language,
                                       kdf=self.ctx.kdf, store=self.ctx.store,
                                       clock=self.ctx.clock,
                                       ttl_secs=self.ctx.settings.return_ttl_secs)
        # Checked again: the youth may have gone while Argon2 ran.
        youth, _ = self.ctx.chat.return_target(staff, self.conn(sid), conv)
        out = Outcome(reply={"expires_at": to_ms(issued.expires_at)})
        # Not through the shared log: the youth may sit on another node, and
        # the passphrase must never rest in Redis (chatserver/live/).
        await self.ctx.live.direct(Emit("return_code", {
            "conversation": conv, "passphrase": issued.passphrase,
            "language": issued.language, "expires_at": to_ms(issued.expires_at)}, (youth,)))
        # Who issued one, and nothing the redemption could be joined on: no row
        # id, no conversation (docs/design/audit.md, "Returns leave no link").
        out.audit(staff.username, "return_issued")
        return out

    async def colleagues(self, sid: str, state: ConnState, data: Any) -> Outcome:
        schemas.empty(data)
        return self.ctx.chat.colleagues(self.staff(state))

    async def transfer(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, to, box = schemas.transfer(data, self.ctx.settings)
        return await self.ctx.live.call("offer_transfer", self.staff(state), self.conn(sid),
                                        conv, to, box)

    async def handover_key(self, sid: str, state: ConnState, data: Any) -> Outcome:
        kx_pk = schemas.take_next(data)  # the same shape: {kx_pk}
        return await self.ctx.live.call("register_handover_key", self.staff(state),
                                        self.conn(sid), kx_pk)

    async def transfer_answer(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, accept, kx_pk = schemas.transfer_answer(data)
        return await self.ctx.live.call("answer_transfer", self.staff(state), self.conn(sid),
                                        conv, accept, kx_pk)

    async def invite_create(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, invite, role = schemas.invite_create(data)
        return await self.ctx.live.call("create_invite", self.staff(state), self.conn(sid), conv,
                                        invite, role)

    async def admit(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, request, accept = schemas.request_answer(data, "accept")
        return await self.ctx.live.call("admit", self.staff(state), self.conn(sid), conv,
                                        request, accept)

    async def remove_member(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, member = schemas.member_ref(data)
        return await self.ctx.live.call("remove_member", self.conn(sid), conv, member)

    async def partners(self, sid: str, state: ConnState, data: Any) -> Outcome:
        query, kind = schemas.partners(data)
        if self.staff(state).role != "counsellor":
            raise NotAllowed()
        directory = self.ctx.directory
        found = directory.search(query, kind=kind)
        return Outcome(reply={"partners": [p.for_counsellor() for p in found],
                              "version": directory.version})

    async def refer(self, sid: str, state: ConnState, data: Any) -> Outcome:
        conv, code = schemas.refer(data)
        partner = self.ctx.directory.get(code)
        if partner is None:
            raise UnknownPartner()
        out = await self.ctx.live.call("refer", self.staff(state), self.conn(sid), conv,
                                       partner.code, partner.kind)
        # The card goes into the chat end to end, from the counsellor's page.
        out.reply["partner"] = partner.public()
        return out

    async def tag(self, sid: str, state: ConnState, data: Any) -> Outcome:
        topics = tuple(self.ctx.settings.service.get("profile", {}).get("topics", ()))
        conv, reasons = schemas.tags(data, topics)
        return await self.ctx.live.call("tag", self.staff(state), self.conn(sid), conv, reasons)


def session_token(cookie_header: str) -> str | None:
    """The session token in a ``Cookie`` header, or None.

    Not ``http.cookies.SimpleCookie``: it takes quadratic time on backslashes
    in a quoted value (CVE-2024-7592 in Python before 3.11.10), and this runs
    on the event loop for every handshake, before any bound applies. A token
    is what ``crypto.tokens.new_secret`` makes; anything else is no token."""
    if not cookie_header or len(cookie_header) > MAX_COOKIE_HEADER_CHARS:
        return None
    for part in cookie_header.split(";"):
        name, sep, value = part.partition("=")
        if sep and name.strip() == SESSION_COOKIE:
            value = value.strip()
            return value if SESSION_TOKEN.fullmatch(value) else None
    return None
