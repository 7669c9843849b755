"""The partner directory's HTTP API for the operator view (docs/protocol.md,
"HTTP"), and the push that tells every console a new version exists.

Every route needs a staff session of an operator or admin; a change also
needs our ``Origin`` and the session's CSRF token, like logout. Bad input is
answered with a code and changes nothing (domain/referrals.py checks the
whole entry before the store is touched).
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable

from aiohttp import web

from chatserver.domain.conversations import STAFF_NS
from chatserver.domain.events import Conn, Outcome
from chatserver.domain.partner_files import FORMATS, export
from chatserver.domain.referrals import KINDS, Partner
from chatserver.errors import (
    BadPayload,
    ChatError,
    NotAllowed,
    PartnerExists,
    SessionRequired,
    UnknownPartner,
)
from chatserver.storage.base import StaffRecord
from chatserver.transport.context import Context
from chatserver.transport.http import CONTEXT, check_origin, json_error, read_json
from chatserver.transport.staff import OPS_ROLES, session_token

BODY_MAX = 16 * 1024  # one entry is at most ~3 KB of text
STATUS = {NotAllowed: 403, UnknownPartner: 404, PartnerExists: 409}
_MEDIA = {"csv": "text/csv; charset=utf-8", "toml": "application/toml; charset=utf-8"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _answer(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ChatError as exc:
            response = json_error(exc)
            response.set_status(STATUS.get(type(exc), response.status))
            return response

    return wrapped


async def _operator(request: web.Request, *, change: bool) -> tuple[Context, StaffRecord]:
    ctx = request.app[CONTEXT]
    if change:
        check_origin(request, ctx)
    token = session_token(request.headers.get("Cookie", ""))
    session = ctx.sessions.get(token) if token else None
    if session is None:
        raise SessionRequired()
    record = await ctx.store.get_by_id(session.staff_id)
    if record is None or record.disabled:
        raise SessionRequired()
    if change:
        ctx.sessions.check_csrf(session, request.headers.get("X-CSRF-Token"))
    if record.role not in OPS_ROLES:
        raise NotAllowed()
    return ctx, record


def _code(request: web.Request) -> str:
    return request.match_info["code"]


def _changed(ctx: Context, partner: Partner) -> web.Response:
    return web.json_response({"ok": True, "version": ctx.partners.directory.version,
                              "partner": partner.entry()})


@_answer
async def list_partners(request: web.Request) -> web.StreamResponse:
    ctx, _ = await _operator(request, change=False)
    directory = ctx.partners.directory
    return web.json_response({"ok": True, "version": directory.version, "kinds": list(KINDS),
                              "partners": [p.entry() for p in directory.everything()]})


@_answer
async def add_partner(request: web.Request) -> web.StreamResponse:
    ctx, staff = await _operator(request, change=True)
    partner = await ctx.partners.add(staff.username, await read_json(request, BODY_MAX))
    return _changed(ctx, partner)


@_answer
async def edit_partner(request: web.Request) -> web.StreamResponse:
    ctx, staff = await _operator(request, change=True)
    partner = await ctx.partners.edit(staff.username, _code(request),
                                      await read_json(request, BODY_MAX))
    return _changed(ctx, partner)


@_answer
async def retire_partner(request: web.Request) -> web.StreamResponse:
    ctx, staff = await _operator(request, change=True)
    data = await read_json(request, BODY_MAX)
    if set(data) != {"retired"}:
        raise BadPayload()
    partner = await ctx.partners.set_retired(staff.username, _code(request), data["retired"])
    return _changed(ctx, partner)


@_answer
async def verify_partner(request: web.Request) -> web.StreamResponse:
    ctx, staff = await _operator(request, change=True)
    if await read_json(request, BODY_MAX):
        raise BadPayload()
    partner = await ctx.partners.verify(staff.username, _code(request))
    return _changed(ctx, partner)


@_answer
async def export_partners(request: web.Request) -> web.StreamResponse:
    ctx, staff = await _operator(request, change=False)
    fmt = request.query.get("format", "csv")
    if fmt not in FORMATS or set(request.query) - {"format"}:
        raise BadPayload()
    day = datetime.datetime.fromtimestamp(ctx.clock.now(), datetime.UTC).date().isoformat()
    entries = ctx.partners.directory.everything()
    body = export(entries, fmt)
    # The file leaves the system with the staff notes in it: audited before
    # it is sent (metadata only), like a statistics download.
    await ctx.audit.record(staff.username, "partners_exported", format=fmt,
                           count=len(entries))
    return web.Response(
        text=body, headers={
            "Content-Type": _MEDIA[fmt],
            "Content-Disposition": f'attachment; filename="partners-{day}.{fmt}"'})


def partners_changed(ctx: Context) -> Callable[[int], Awaitable[None]]:
    """The bank's listener on this node: one ``partners_changed`` to every
    connected console. Consoles fetch what they show again; the event carries
    only the version, so it is the same for every role."""

    async def push(version: int) -> None:
        sids = ctx.staff_sids()
        if not sids:
            return
        out = Outcome()
        out.emit("partners_changed", {"version": version}, [Conn(STAFF_NS, s) for s in sids])
        await ctx.apply(out)

    return push


def add_routes(app: web.Application) -> None:
    app.router.add_get("/staff/api/partners", list_partners)
    app.router.add_post("/staff/api/partners", add_partner)
    app.router.add_get("/staff/api/partners/export", export_partners)
    app.router.add_put("/staff/api/partners/{code}", edit_partner)
    app.router.add_post("/staff/api/partners/{code}/retire", retire_partner)
    app.router.add_post("/staff/api/partners/{code}/verify", verify_partner)
