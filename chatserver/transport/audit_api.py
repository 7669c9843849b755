"""Staff HTTP routes for the staff-work log: operators and admins only.

- ``GET /staff/api/worklog?from=YYYY-MM-DD&to=…&actor=…&action=…&page=N``:
  matching audit entries, newest first, ``PAGE_SIZE`` a page;
- ``GET /staff/api/worklog.csv?…``: every matching entry as a CSV download;
- ``GET /staff/api/worklog/summary?from=…&to=…``: one row per staff member
  (duty hours, conversations taken, transfers, referrals by partner kind,
  invites, return codes issued); ``/staff/api/worklog/summary.csv`` the same
  as CSV;
- ``GET /staff/api/worklog/verify``: what ``chatserver audit verify`` says:
  ``ok``, ``broken`` (at ``seq``) or ``unsealed``.

A CSV file leaves the system, so each export is itself audited
(``worklog_exported``); looking at the view is not, as for the statistics.
Errors are JSON with a code: ``session_required`` (401), ``not_allowed`` (403,
e.g. a counsellor), ``bad_range`` (400: a malformed or reversed period, a
filter that is not a plain name). Design: docs/design/audit.md, "Staff work".
"""

from __future__ import annotations

from aiohttp import web

from chatserver.domain import worklog
from chatserver.domain.audit import verify
from chatserver.domain.sessions import Session
from chatserver.errors import BadRange
from chatserver.transport.http import CONTEXT
from chatserver.transport.stats_api import ROLES, _staff

__all__ = ["ROLES", "add_routes"]


def _period(request: web.Request) -> worklog.Period:
    ctx = request.app[CONTEXT]
    return worklog.period(request.query.get("from", ""), request.query.get("to", ""),
                          ctx.clock.now())


async def _entries(request: web.Request, paged: bool) -> tuple[Session, worklog.Period,
                                                                   worklog.Page]:
    session = await _staff(request)
    p = _period(request)
    actor = worklog.name_filter(request.query.get("actor", ""))
    action = worklog.name_filter(request.query.get("action", ""))
    page: int | None = None
    if paged:
        raw = request.query.get("page", "1")
        if not raw.isdigit() or len(raw) > 6:
            raise BadRange()
        page = int(raw)
    store = request.app[CONTEXT].store
    return session, p, await worklog.entries(store.iter_audit(), p, actor, action, page)


def _csv(body: str, name: str) -> web.Response:
    return web.Response(body=body.encode("utf-8"), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def worklog_json(request: web.Request) -> web.Response:
    _, p, page = await _entries(request, paged=True)
    return web.json_response({"ok": True, "from": p.first, "to": p.last,
                              "entries": page.entries, "total": page.total,
                              "page": page.page, "pages": page.pages,
                              "actors": page.actors, "actions": page.actions})


async def worklog_csv(request: web.Request) -> web.Response:
    session, p, page = await _entries(request, paged=False)
    await request.app[CONTEXT].audit.record(session.username, "worklog_exported",
                                            kind="entries", count=page.total, format="csv")
    return _csv(worklog.entries_csv(page), f"staff-work-{p.first}-{p.last}.csv")


async def _summaries(request: web.Request) -> tuple[Session, worklog.Period,
                                                     list[worklog.Summary]]:
    session = await _staff(request)
    p = _period(request)
    ctx = request.app[CONTEXT]
    return session, p, await worklog.summaries(ctx.store.iter_audit(), p, ctx.clock.now())


async def summary_json(request: web.Request) -> web.Response:
    _, p, rows = await _summaries(request)
    return web.json_response({"ok": True, "from": p.first, "to": p.last,
                              "rows": [s.as_json() for s in rows]})


async def summary_csv(request: web.Request) -> web.Response:
    session, p, rows = await _summaries(request)
    await request.app[CONTEXT].audit.record(session.username, "worklog_exported",
                                            kind="summary", count=len(rows), format="csv")
    return _csv(worklog.summaries_csv(rows), f"staff-summary-{p.first}-{p.last}.csv")


async def verify_json(request: web.Request) -> web.Response:
    await _staff(request)
    ctx = request.app[CONTEXT]
    result = await verify(ctx.store, ctx.settings.require_secrets().audit_key)
    if result.ok:
        status = "ok"
    elif await ctx.audit.unsealed():
        status = "unsealed"
    else:
        status = "broken"
    return web.json_response({"ok": True, "status": status, "entries": result.rows,
                              "first_seq": result.first_seq, "pruned": result.pruned,
                              "seq": result.first_bad_seq, "problem": result.problem})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/staff/api/worklog", worklog_json)
    app.router.add_get("/staff/api/worklog.csv", worklog_csv)
    app.router.add_get("/staff/api/worklog/summary", summary_json)
    app.router.add_get("/staff/api/worklog/summary.csv", summary_csv)
    app.router.add_get("/staff/api/worklog/verify", verify_json)
