"""HTTP: the pages and assets, the exit hop, health checks and staff login.

Every response, errors and 404s included, gets the headers of
docs/security-design.md ("Headers") from one ``on_response_prepare`` hook. Only the
login route sets a cookie. A page with an inline script or stylesheet (the
youth page's early quick exit and its styles) gets a CSP that allows exactly
those by their hashes, which the build publishes in dist/manifest.json and this
module reads once at start-up. The youth page is served in the language the
browser asks for (page_language.py), from the variants the manifest names.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from chatserver.domain import auth
from chatserver.errors import (
    BadCredentials,
    BadOrigin,
    BadPayload,
    ChatError,
    CsrfFailed,
    LockedOut,
    NotAllowed,
    RateLimited,
    SessionRequired,
    TooLarge,
)
from chatserver.settings import REPO_ROOT, canned_texts
from chatserver.transport import page_language
from chatserver.transport.context import Context
from chatserver.transport.ratelimit import address_group, client_address
from chatserver.transport.server import ChatSocketServer
from chatserver.transport.staff import SESSION_COOKIE, session_token

log = logging.getLogger(__name__)

CONTEXT = web.AppKey("context", Context)
# Page path -> its CSP, for pages whose CSP differs from CSP (see page_csps).
PAGE_CSP = web.AppKey("page_csp", dict[str, str])
# Page path -> {language: file} for pages written once per language (see page_variants).
PAGE_VARIANTS = web.AppKey("page_variants", dict[str, dict[str, str]])
# Set on a request answered with one of a page's language variants.
CHOSEN_BY_LANGUAGE = web.RequestKey("chosen_by_language", bool)
DEFAULT_LANGUAGE = "sv"

# The pages' crypto is plain JavaScript (@noble): no WebAssembly, so no
# 'wasm-unsafe-eval'.
CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; "
       "style-src 'self'; img-src 'self' data:; font-src 'self'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Cache-Control": "no-store, max-age=0",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": CSP,
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# One CSP hash source, exactly: a manifest can add a script's hash, never a
# keyword such as 'unsafe-inline' or another origin.
CSP_SCRIPT_HASH = re.compile(r"'sha256-[A-Za-z0-9+/]{43}='")
# No product name or version: a neutral constant (aiohttp would add its own).
SERVER_HEADER = "web"
LOGIN_BODY_MAX = 4096
ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
COOKIE_PATHS = frozenset({"/staff/api/login", "/staff/api/logout"})
PAGES = {"/": "index.html", "/console": "console.html", "/operator": "operator.html",
         "/join": "join.html"}  # /join: the liaison page; the invite secret is in the fragment
STATUS_FOR = {BadCredentials: 401, SessionRequired: 401, LockedOut: 429, BadOrigin: 403,
              CsrfFailed: 403, BadPayload: 400, TooLarge: 413, RateLimited: 429,
              NotAllowed: 403}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_HEADER
    if isinstance(response, web.WebSocketResponse):
        # A 101 upgrade carries no document: CSP, caching and the rest mean
        # nothing to a WebSocket, and the headers object lives as long as the
        # connection (~1–2 KB each, docs/performance.md). The Server header is
        # still neutral.
        return
    response.headers.update(SECURITY_HEADERS)
    page_csp = request.app[PAGE_CSP].get(request.path)
    if page_csp is not None:
        response.headers["Content-Security-Policy"] = page_csp
    if request.get(CHOSEN_BY_LANGUAGE):
        # Caches must key on the language too (FileResponse set Accept-Encoding).
        vary = [v.strip() for v in response.headers.getall("Vary", []) for v in v.split(",")]
        response.headers["Vary"] = ", ".join([v for v in vary if v] + ["Accept-Language"])
    # Validators would let a browser revalidate (and so remember) a page.
    response.headers.popall("ETag", None)
    response.headers.popall("Last-Modified", None)
    if "Set-Cookie" in response.headers and request.path not in COOKIE_PATHS:
        # Defence in depth for promise 3: only staff login/logout touch a cookie.
        response.headers.popall("Set-Cookie", None)


def json_error(exc: ChatError) -> web.Response:
    status = STATUS_FOR.get(type(exc), 400)
    body: dict[str, Any] = {"ok": False, "error": exc.code}
    if exc.info:
        body["info"] = exc.info
    return web.json_response(body, status=status)


async def errors_as_json(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ChatError as exc:
        return json_error(exc)
    except web.HTTPException as exc:
        if exc.status >= 400:
            return web.json_response({"ok": False, "error": _http_code(exc.status)},
                                     status=exc.status)
        raise


SOCKET_PATH = "/socket.io/"
WS_EXTENSIONS = "Sec-WebSocket-Extensions"


@web.middleware
def middleware(request: web.Request, handler: Any) -> Awaitable[web.StreamResponse]:
    """The app's one middleware. Deliberately not ``async``: for engine.io's
    path it hands back the handler's coroutine for aiohttp to await, so no
    frame of ours stays on a WebSocket's stack for the connection's life
    (~0.8 KB per connection, docs/performance.md "Memory per connection").

    Every WebSocket upgrade is answered without permessage-deflate. Every
    browser offers the extension and python-engineio accepts it (aiohttp's
    default), which costs a zlib context per connection — about 100 KB of RSS
    each — and CPU per frame for ciphertext that does not compress. Dropping
    the offer before engine.io sees it is how we decline without patching the
    library. Everything else gets errors as JSON."""
    if request.path.startswith(SOCKET_PATH):
        refused = None
        if request.method == "GET" and not _engineio_sid(request):
            # A new session, by long-polling or straight to WebSocket.
            refused = _refuse_handshake(request)
        elif request.method == "POST":
            refused = _refuse_post(request)
        if refused is not None:
            return refused
        if request.headers.get("Upgrade", "").lower() == "websocket":
            # Counted for the GC policy: every WebSocket engine.io serves ends
            # in a reference cycle when it closes (docs/decisions/0007).
            request.app[CONTEXT].websockets_opened += 1
        if WS_EXTENSIONS in request.headers:
            headers = request.headers.copy()
            del headers[WS_EXTENSIONS]
            request = request.clone(headers=headers)
        response: Awaitable[web.StreamResponse] = handler(request)
        return response
    return errors_as_json(request, handler)


def _refuse_post(request: web.Request) -> Awaitable[web.StreamResponse] | None:
    """Answer the long-polling POSTs engine.io would get wrong, before it sees
    them. Over the size bound engine.io closes the session and then waits for
    a poll that never comes (the request hangs, and the next one is an HTTP 500
    from a KeyError); the WebSocket transport closes the connection for the
    same frame, so here too the session ends, with a 413. A POST for a session
    that is closed but not yet forgotten is a 400, not that 500."""
    ctx = request.app[CONTEXT]
    sio = ctx.sio
    sid = _engineio_sid(request)
    if sio is None or not sid:
        return None
    socket = sio.eio.sockets.get(sid)
    if socket is not None and socket.closed:
        return _json_status(400, "bad_request")
    length = request.content_length
    if length is not None and length > ctx.settings.max_event_bytes:
        return _close_too_large(sio, sid)
    return None


def _engineio_sid(request: web.Request) -> str | None:
    """The session id as engine.io reads it (``parse_qs`` drops blank values):
    with aiohttp's own reading, ``&sid=`` looked like a poll here and a new
    session to engine.io, and so skipped the held refusal."""
    found = parse_qs(request.query_string).get("sid")
    return found[0] if found else None


def _refuse_handshake(request: web.Request) -> Awaitable[web.StreamResponse] | None:
    """Refuse a handshake past the connection bounds (transport/admission.py)
    before engine.io builds a session for it: a refusal there cost ~0.35 ms of
    CPU each, and one client flooding in a loop took 65 % of a core."""
    sio = request.app[CONTEXT].sio
    if sio is None:
        return None
    environ = {"HTTP_COOKIE": request.headers.get("Cookie", ""), "aiohttp.request": request}
    refusal = sio.handshake_refusal(environ)
    return _held_refusal(sio, refusal) if refusal is not None else None


async def _held_refusal(sio: ChatSocketServer, refusal: str) -> web.StreamResponse:
    # Held back before the answer: a client that floods in a loop gets one
    # answer per delay per connection it holds open, instead of thousands a
    # second. The connection is closed after the answer, so the next try
    # pays for a new one.
    gate = sio.admission
    if gate is not None and gate.held < gate.held_max:
        gate.held += 1
        try:
            await asyncio.sleep(gate.refusal_delay_secs)
        finally:
            gate.held -= 1
    response = web.json_response({"ok": False, "error": refusal}, status=401)
    response.force_close()
    return response


async def _json_status(status: int, code: str) -> web.StreamResponse:
    return web.json_response({"ok": False, "error": code}, status=status)


async def _close_too_large(sio: ChatSocketServer, sid: str) -> web.StreamResponse:
    await sio.close_now(sid)
    return web.json_response({"ok": False, "error": "too_large"}, status=413)


def _http_code(status: int) -> str:
    return {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(status,
                                                                             "bad_request")


def static_root(ctx: Context) -> Path:
    root = Path(ctx.settings.static_dir)
    return root if root.is_absolute() else REPO_ROOT / root


def page_csps(static: Path) -> dict[str, str]:
    """The CSP of each page that carries an inline script or stylesheet: CSP
    with the hashes the build published for it (``csp_script_hashes`` and
    ``csp_style_hashes`` in dist/manifest.json) added to script-src and
    style-src. Only the youth page has them: the quick exit that works before
    the bundle has loaded, and its stylesheet (inline so that the first paint
    does not wait a round trip for it). With no dist/ or no manifest every page
    gets CSP, and inline code is simply blocked (the exit button is still a
    link to /exit). Read once at start-up: a rebuild that changes them needs a
    restart, like any other change to dist/."""
    try:
        manifest = json.loads((static / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.warning("web client manifest unreadable: every page gets the default CSP")
        return {}
    if not isinstance(manifest, dict):
        return {}
    variants = _variants(manifest)
    csps: dict[str, str] = {}
    for path, html in PAGES.items():
        # A page written per language gets the hashes of all its files (they
        # carry the same early exit and stylesheet, so in practice one each).
        names = [html, *sorted(set(variants.get(path, {}).values()) - {html})]
        csp = CSP
        for key, directive in (("csp_script_hashes", "script-src 'self'"),
                               ("csp_style_hashes", "style-src 'self'")):
            hashes = _published_hashes(manifest.get(key), names)
            if hashes:
                csp = csp.replace(directive, directive + " " + " ".join(hashes), 1)
        if csp != CSP:
            csps[path] = csp
    return csps


def _published_hashes(published: Any, names: list[str]) -> list[str]:
    if not isinstance(published, dict):
        return []
    hashes: list[str] = []
    for name in names:
        found = published.get(name) or []
        if not isinstance(found, list) or not all(
                isinstance(h, str) and CSP_SCRIPT_HASH.fullmatch(h) for h in found):
            log.warning("web client manifest: a hash for %s is malformed; ignored", name)
            return []
        hashes += [h for h in found if h not in hashes]
    return hashes


VARIANT_FILE = re.compile(r"[a-z0-9][a-z0-9.-]{0,63}\.html")
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")


def _variants(manifest: Any) -> dict[str, dict[str, str]]:
    published = manifest.get("page_variants") if isinstance(manifest, dict) else None
    if not isinstance(published, dict):
        return {}
    out: dict[str, dict[str, str]] = {}
    for path, html in PAGES.items():
        table = published.get(html)
        if not isinstance(table, dict):
            continue
        good = {code: name for code, name in table.items()
                if isinstance(code, str) and LANGUAGE_CODE.fullmatch(code)
                and isinstance(name, str) and VARIANT_FILE.fullmatch(name)}
        if good != table:
            log.warning("web client manifest: a language variant of %s is malformed; ignored", html)
        if good:
            out[path] = good
    return out


def page_variants(static: Path) -> dict[str, dict[str, str]]:
    """Page path -> {language: file} for pages the build wrote once per
    language (``page_variants`` in dist/manifest.json): the youth page, whose
    first screen is in the HTML. Read once at start-up, like page_csps."""
    try:
        manifest = json.loads((static / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return _variants(manifest)


async def page(request: web.Request) -> web.StreamResponse:
    name = PAGES[request.path]
    variants = request.app[PAGE_VARIANTS].get(request.path)
    if variants:
        # The language the browser asks for (q-values honoured), default
        # Swedish; nothing stored, no cookie; Vary: Accept-Language.
        code = page_language.choose(request.headers.get("Accept-Language"), set(variants),
                                    DEFAULT_LANGUAGE)
        name = variants.get(code, name)
        request[CHOSEN_BY_LANGUAGE] = True
    path = static_root(request.app[CONTEXT]) / name
    if not path.is_file():
        return web.Response(status=503, text="The web client is not built: run `make setup`.\n")
    return web.FileResponse(path)


async def asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if not ASSET_NAME.fullmatch(name):
        raise web.HTTPNotFound()
    path = static_root(request.app[CONTEXT]) / "assets" / name
    if not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path)


async def favicon(request: web.Request) -> web.StreamResponse:
    path = static_root(request.app[CONTEXT]) / "favicon.ico"
    if not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path)


async def exit_hop(request: web.Request) -> web.StreamResponse:
    """Quick exit lands here via location.replace(): clear what the browser may
    hold for this origin, then go on to the neutral site (no history entry).
    With scripts blocked the exit button is a plain link here, which does add
    a history entry: Back then returns to the youth page, loaded afresh."""
    ctx = request.app[CONTEXT]
    response = web.HTTPFound(location=ctx.settings.exit_url)
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    raise response


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    try:
        await ctx.store.ping()
    except Exception:
        log.warning("readiness check: database did not answer")
        return web.json_response({"ok": False, "error": "not_ready"}, status=503)
    if not ctx.live.up():  # Redis out of reach, or the log not yet caught up
        return web.json_response({"ok": False, "error": "not_ready"}, status=503)
    return web.json_response({"ok": True})


def check_origin(request: web.Request, ctx: Context) -> None:
    if request.headers.get("Origin") != ctx.settings.public_origin:
        raise BadOrigin()


async def read_json(request: web.Request, limit: int) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge()
    raw = await request.content.read(limit + 1)
    if len(raw) > limit:
        raise TooLarge()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadPayload() from None
    if not isinstance(data, dict):
        raise BadPayload()
    return data


def _short_str(data: dict[str, Any], key: str, limit: int) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise BadPayload()
    if len(value) > limit:
        raise TooLarge()
    return value


async def login(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    check_origin(request, ctx)
    address = client_address(request, ctx.settings)
    if address is not None:
        group = address_group(address, ctx.settings)
        wait = ctx.login_addresses.hit(ctx.login_addresses.key_for(group))
        if wait > 0:
            raise RateLimited({"retry_after_secs": max(1, round(wait))})
    data = await read_json(request, LOGIN_BODY_MAX)
    if set(data) != {"username", "password", "totp"}:
        raise BadPayload()
    staff = await auth.login(
        _short_str(data, "username", 64), _short_str(data, "password", 1024),
        _short_str(data, "totp", 16), store=ctx.store, audit=ctx.audit, clock=ctx.clock,
        settings=ctx.settings, guard=ctx.login_guard)
    # Rotation: a login never reuses a session; one presented is revoked.
    token, csrf = ctx.sessions.create(
        staff, replacing=session_token(request.headers.get("Cookie", "")))
    # Every node must know the session before the console connects (the
    # balancer may send it to any node).
    await ctx.live.sessions_changed()
    response = web.json_response({"ok": True, "csrf": csrf, "role": staff.role,
                                  "alias": staff.alias, "username": staff.username})
    response.set_cookie(SESSION_COOKIE, token, path="/", secure=True, httponly=True,
                        samesite="Strict")
    return response


async def logout(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    check_origin(request, ctx)
    token = session_token(request.headers.get("Cookie", ""))
    session = ctx.sessions.get(token) if token else None
    if token is None or session is None:
        raise SessionRequired()
    ctx.sessions.check_csrf(session, request.headers.get("X-CSRF-Token"))
    ctx.sessions.revoke(token)
    await ctx.live.sessions_changed()
    await ctx.audit.record(session.username, "logout")
    response = web.json_response({"ok": True})
    response.del_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True,
                        samesite="Strict")
    return response


async def me(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    token = session_token(request.headers.get("Cookie", ""))
    session = ctx.sessions.get(token) if token else None
    if token is None or session is None:
        raise SessionRequired()
    record = await ctx.store.get_by_id(session.staff_id)
    if record is None or record.disabled:
        raise SessionRequired()
    return web.json_response({"ok": True, "username": record.username, "role": record.role,
                              "alias": record.alias, "csrf": session.csrf,
                              # The centre's canned responses (config), for the console.
                              "canned": canned_texts(ctx.settings)})


def add_routes(app: web.Application) -> None:
    ctx = app.get(CONTEXT)
    # An app built only to list the routes has no context and serves nothing.
    app[PAGE_CSP] = page_csps(static_root(ctx)) if ctx is not None else {}
    app[PAGE_VARIANTS] = page_variants(static_root(ctx)) if ctx is not None else {}
    app.on_response_prepare.append(add_security_headers)
    for path in PAGES:
        app.router.add_get(path, page)
    app.router.add_get("/assets/{name}", asset)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/exit", exit_hop)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_post("/staff/api/login", login)
    app.router.add_post("/staff/api/logout", logout)
    app.router.add_get("/staff/api/me", me)
    from chatserver.transport import stats_api  # it imports this module
    stats_api.add_routes(app)
    from chatserver.transport import partners_api  # it imports this module
    partners_api.add_routes(app)
    from chatserver.transport import audit_api  # it imports this module
    audit_api.add_routes(app)
