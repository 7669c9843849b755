"""Staff HTTP routes for the statistics: operators and admins only.

- ``GET /staff/api/stats?from=YYYY-MM&to=YYYY-MM``: the report as JSON;
- ``GET /staff/api/stats.csv?from=…&to=…``: the same rows as a CSV download;
- ``POST /staff/api/stats/manual``: set a hand-entered monthly count
  (``{"month", "kind", "count"}``), with ``Origin`` and the CSRF token.

Every route reads the report through ``stats_report.build_report``, like the
CLI, so both give the same numbers (docs/statistics.md). Errors are JSON with
a code: ``session_required`` (401), ``not_allowed`` (403, e.g. a counsellor),
``bad_range`` and ``bad_payload`` (400), ``csrf_failed`` and ``bad_origin`` (403).
"""

from __future__ import annotations

from aiohttp import web

from chatserver.domain import stats_manual
from chatserver.domain.sessions import Session
from chatserver.domain.stats_report import Report, build_report
from chatserver.errors import BadPayload, NotAllowed, SessionRequired
from chatserver.transport.http import CONTEXT, check_origin, read_json
from chatserver.transport.staff import session_token

ROLES = frozenset({"operator", "admin"})
MANUAL_BODY_MAX = 1024


async def _staff(request: web.Request) -> Session:
    """The caller's session, if it is a live operator's or admin's."""
    ctx = request.app[CONTEXT]
    token = session_token(request.headers.get("Cookie", ""))
    session = ctx.sessions.get(token) if token else None
    if session is None:
        raise SessionRequired()
    record = await ctx.store.get_by_id(session.staff_id)
    if record is None or record.disabled:
        raise SessionRequired()
    if record.role not in ROLES:
        raise NotAllowed()
    return session


async def _report(request: web.Request) -> tuple[Session, Report]:
    session = await _staff(request)
    ctx = request.app[CONTEXT]
    report = await build_report(ctx.store, request.query.get("from", ""),
                                request.query.get("to", ""), ctx.settings.stats_suppress_below,
                                ctx.settings.service.get("profile", {}))
    return session, report


async def stats_json(request: web.Request) -> web.Response:
    _, report = await _report(request)
    return web.json_response({"ok": True, **report.as_json()})


async def stats_csv(request: web.Request) -> web.Response:
    session, report = await _report(request)
    # A file that leaves the system is audited; looking at the view is not
    # (like the live figures).
    await request.app[CONTEXT].audit.record(
        session.username, "stats_exported", month=report.first, count=len(report.months),
        format="csv")
    name = f"statistics-{report.first}-{report.last}.csv"
    return web.Response(
        body=report.as_csv().encode("utf-8"), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def stats_manual_entry(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    check_origin(request, ctx)
    session = await _staff(request)
    ctx.sessions.check_csrf(session, request.headers.get("X-CSRF-Token"))
    data = await read_json(request, MANUAL_BODY_MAX)
    if set(data) != {"month", "kind", "count"}:
        raise BadPayload()
    await stats_manual.enter(ctx.store, ctx.audit, session.username,
                             data["month"], data["kind"], data["count"])
    return web.json_response({"ok": True, "month": data["month"], "kind": data["kind"],
                              "count": data["count"]})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/staff/api/stats", stats_json)
    app.router.add_get("/staff/api/stats.csv", stats_csv)
    app.router.add_post("/staff/api/stats/manual", stats_manual_entry)
