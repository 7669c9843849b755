"""Security headers on every HTTP response (docs/security-design.md, "Headers").

A real server on a real port, asked over real HTTP. Three static set-ups, so the
suite passes whether or not the web client is built and still checks every
branch: the repository's own ``web_client/dist`` (built or not), a small fake
build (pages and assets answer 200 through ``FileResponse``, which would add
``ETag``/``Last-Modified``), and a missing directory (pages answer 503).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from chatserver.transport.http import page_csps
from tests.conftest import LiveServer, free_port, make_settings, start_server

CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; "
       "style-src 'self'; img-src 'self' data:; font-src 'self'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")
EXPECTED = {
    "Cache-Control": "no-store, max-age=0",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": CSP,
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# A neutral exit URL that is not the default, so the test sees the configured one.
EXIT_URL = "https://example.org/weather?city=uppsala"
FAKE_ASSET = "app-3f9a.js"
REPO_DIST = Path(__file__).resolve().parents[2] / "web_client" / "dist"


@dataclass(frozen=True)
class Site:
    server: LiveServer
    kind: str  # "repo", "built" or "missing"
    static: Path

    @property
    def pages_built(self) -> bool:
        return (self.static / "index.html").is_file()

    def existing_asset(self) -> str | None:
        assets = self.static / "assets"
        if not assets.is_dir():
            return None
        names = sorted(p.name for p in assets.iterdir()
                       if p.is_file() and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", p.name))
        return names[0] if names else None


def _fake_build(root: Path) -> Path:
    (root / "assets").mkdir(parents=True)
    for page in ("index.html", "console.html", "operator.html"):
        (root / page).write_text("<!doctype html><title>x</title>\n", encoding="utf-8")
    (root / "assets" / FAKE_ASSET).write_text("console.log(1);\n", encoding="utf-8")
    (root / "favicon.ico").write_bytes(b"\x00\x00\x01\x00")
    return root


@pytest.fixture(params=["repo", "built", "missing"])
async def site(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Site]:
    kind = request.param
    static = {"repo": REPO_DIST, "built": tmp_path / "dist", "missing": tmp_path / "nothing"}[kind]
    if kind == "built":
        _fake_build(static)
    port = free_port()
    settings = make_settings(tmp_path / "var", port=port, public_origin=f"http://localhost:{port}",
                             static_dir=str(static), exit_url=EXIT_URL)
    runner, server = await start_server(settings)
    try:
        yield Site(server, kind, static)
    finally:
        await runner.cleanup()


def page_csp(static: Path, page: str) -> str:
    """The CSP a page must get: CSP plus the hash of each inline script and
    stylesheet the page carries (computed here from the page itself, not from
    the manifest)."""
    path = static / page
    if not path.is_file():
        return CSP
    html = path.read_text(encoding="utf-8")
    csp = CSP
    for tag, directive in (("script", "script-src 'self'"), ("style", "style-src 'self'")):
        hashes = ["'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()
                  + "'" for s in re.findall(rf"<{tag}>(.*?)</{tag}>", html, re.S)]
        csp = csp.replace(directive, " ".join([directive, *hashes]))
    return csp


def assert_security_headers(what: str, headers: CIMultiDictProxy[str],
                            *, cookie_allowed: bool = False, csp: str = CSP) -> None:
    for name, value in {**EXPECTED, "Content-Security-Policy": csp}.items():
        assert headers.getall(name, []) == [value], f"{what}: {name} = {headers.getall(name, [])}"
    if not cookie_allowed:
        assert "Set-Cookie" not in headers, f"{what} sets a cookie"
    assert "ETag" not in headers, f"{what} has an ETag"
    assert "Last-Modified" not in headers, f"{what} has Last-Modified"
    assert "X-Powered-By" not in headers
    for server in headers.getall("Server", []):
        assert not re.search(r"\d", server), f"{what}: Server header {server!r} has a version"
        assert not re.search(r"aiohttp|python|socket|engine", server, re.I), (
            f"{what}: Server header {server!r} names the product")


async def _request(http: aiohttp.ClientSession, method: str, url: str,
                   **kwargs: object) -> tuple[int, CIMultiDictProxy[str], bytes]:
    async with http.request(method, url, allow_redirects=False, **kwargs) as resp:
        return resp.status, resp.headers, await resp.read()


async def test_every_route_carries_the_security_headers(site: Site) -> None:
    server = site.server
    built = site.pages_built
    asset = site.existing_asset()
    page_status = 200 if built else 503
    origin = {"Origin": server.origin}
    # (method, path, extra request kwargs, expected status)
    routes: list[tuple[str, str, dict[str, object], int]] = [
        ("GET", "/", {}, page_status),
        ("HEAD", "/", {}, page_status),
        ("GET", "/console", {}, page_status),
        ("GET", "/operator", {}, page_status),
        ("GET", f"/assets/{asset or 'not-built.js'}", {}, 200 if asset else 404),
        ("GET", "/assets/missing-0000.js", {}, 404),
        ("GET", "/assets/..%2fsecrets.toml", {}, 404),
        ("GET", "/favicon.ico", {}, 200 if (site.static / "favicon.ico").is_file() else 404),
        ("GET", "/exit", {}, 302),
        ("GET", "/healthz", {}, 200),
        ("GET", "/readyz", {}, 200),
        ("GET", "/staff/api/me", {}, 401),
        ("POST", "/staff/api/login",
         {"json": {"username": "nobody", "password": "wrong password!", "totp": "123456"},
          "headers": origin}, 401),
        ("POST", "/staff/api/login",
         {"json": {"username": "nobody", "password": "x", "totp": "1"}}, 403),  # no Origin
        ("POST", "/staff/api/logout", {"headers": origin}, 401),
        ("GET", "/no/such/page", {}, 404),
        ("GET", "/staff/api/login", {}, 405),
        ("POST", "/healthz", {}, 405),
        ("GET", "/socket.io/?EIO=4&transport=polling", {"headers": origin}, 200),
        ("GET", "/socket.io/?EIO=4&transport=polling",
         {"headers": {"Origin": "https://evil.example"}}, 400),
    ]
    if built:
        # A conditional request must not turn into a cache validation either.
        routes.append(("GET", "/", {"headers": {"If-Modified-Since":
                                                "Wed, 01 Jan 2098 00:00:00 GMT"}}, -1))
    async with aiohttp.ClientSession() as http:
        for method, path, kwargs, expected in routes:
            what = f"{site.kind}: {method} {path}"
            status, headers, body = await _request(http, method, server.url + path, **kwargs)
            if expected != -1:
                assert status == expected, f"{what} answered {status}"
            assert_security_headers(
                what, headers, csp=page_csp(site.static, "index.html") if path == "/" else CSP)
            if path.startswith("/socket.io/"):
                # engine.io's CORS answer names only our origin, never a wildcard.
                allowed = headers.getall("Access-Control-Allow-Origin", [])
                assert allowed == ([server.origin] if status == 200 else [])
                if status == 200:
                    assert body.startswith(b"0{") and b'"sid"' in body
            if path == "/exit":
                assert headers["Location"] == EXIT_URL
                assert headers["Clear-Site-Data"] == '"cache", "storage"'
            if status in (401, 403, 404, 405) and method != "HEAD":
                assert body.startswith(b"{"), f"{what}: error body is not JSON: {body[:80]!r}"


async def test_fake_build_serves_files_without_validators(tmp_path: Path) -> None:
    # The fake build proves the 200 path really goes through FileResponse (which
    # sets ETag and Last-Modified) and that the hook strips them.
    static = _fake_build(tmp_path / "dist")
    port = free_port()
    settings = make_settings(tmp_path / "var", port=port, public_origin=f"http://localhost:{port}",
                             static_dir=str(static))
    runner, server = await start_server(settings)
    try:
        async with aiohttp.ClientSession() as http:
            status, headers, body = await _request(http, "GET", f"{server.url}/assets/{FAKE_ASSET}")
            assert status == 200 and body == b"console.log(1);\n"
            assert_security_headers("asset", headers)
            status, headers, body = await _request(http, "GET", server.url + "/")
            assert status == 200 and body.startswith(b"<!doctype html>")
            assert_security_headers("page", headers)
    finally:
        await runner.cleanup()


async def test_only_a_successful_login_sets_a_cookie(live_server: LiveServer) -> None:
    creds = await live_server.add_staff()
    origin = {"Origin": live_server.origin}
    async with aiohttp.ClientSession() as http:
        status, headers, _ = await _request(
            http, "POST", live_server.url + "/staff/api/login", headers=origin,
            json={"username": creds.username, "password": creds.password, "totp": creds.code()})
        assert status == 200
        assert_security_headers("login ok", headers, cookie_allowed=True)
        cookies = headers.getall("Set-Cookie")
        assert len(cookies) == 1 and cookies[0].startswith("__Host-session=")
        token = cookies[0].split(";", 1)[0]
        me = await http.get(live_server.url + "/staff/api/me", headers={"Cookie": token})
        csrf = (await me.json())["csrf"]
        assert_security_headers("me with a session", me.headers)
        # Logout expires the cookie (and only that): the browser forgets it.
        status, headers, _ = await _request(
            http, "POST", live_server.url + "/staff/api/logout",
            headers={**origin, "Cookie": token, "X-CSRF-Token": csrf})
        assert status == 200
        assert_security_headers("logout", headers, cookie_allowed=True)
        expired = headers.getall("Set-Cookie")
        assert len(expired) == 1 and expired[0].startswith('__Host-session=""')
        assert "Max-Age=0" in expired[0] and "Secure" in expired[0]


async def test_exit_hop_redirects_to_the_configured_neutral_site(live_server: LiveServer) -> None:
    async with aiohttp.ClientSession() as http:
        status, headers, _ = await _request(http, "GET", live_server.url + "/exit")
    assert status == 302
    assert headers["Location"] == live_server.settings.exit_url
    assert headers["Clear-Site-Data"] == '"cache", "storage"'
    assert_security_headers("exit", headers)



@pytest.mark.parametrize("encoding", ["br", "gzip", None])
async def test_the_youth_page_is_served_precompressed_as_the_browser_accepts(
        live_server: LiveServer, encoding: str | None) -> None:
    # A phone on a slow network downloads the bundle compressed: the build
    # writes .br and .gz beside every asset and the server picks by
    # Accept-Encoding, with the same headers as any other response.
    manifest = json.loads((REPO_DIST / "manifest.json").read_text(encoding="utf-8"))
    youth = next(p for p in manifest["pages"] if p["page"] == "index.html")
    original = (REPO_DIST / youth["js"]).read_bytes()
    headers = {"Accept-Encoding": f"{encoding}, deflate" if encoding else "identity"}
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        status, got, body = await _request(http, "GET", f"{live_server.url}/{youth['js']}",
                                           headers=headers)
    assert status == 200
    assert_security_headers("compressed asset", got)
    if encoding is None:
        assert "Content-Encoding" not in got and body == original
        return
    assert got["Content-Encoding"] == encoding and got["Vary"] == "Accept-Encoding"
    assert len(body) < len(original) / 2
    assert _decompress(encoding, body) == original


def _decompress(encoding: str, body: bytes) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    # The standard library has no brotli; the build's own Node does.
    done = subprocess.run(
        ["node", "-e", "process.stdout.write(require('zlib').brotliDecompressSync("
         "require('fs').readFileSync(0)))"], input=body, capture_output=True, check=True)
    return done.stdout


async def test_a_page_csp_allows_its_published_inline_script_by_hash_only(
        tmp_path: Path) -> None:
    """The youth page's early quick exit is an inline script: the build
    publishes its hash in dist/manifest.json and the server adds exactly that
    hash to that page's script-src, never 'unsafe-inline'. Anything in the
    manifest that is not one sha256 hash is ignored; other pages keep CSP."""
    static = _fake_build(tmp_path / "dist")
    script = "location.replace('/exit')"
    style = ".qx{color:red}"
    (static / "index.html").write_text(
        f"<!doctype html><title>x</title><script>{script}</script><style>{style}</style>\n",
        encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    style_digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    manifest = {"csp_script_hashes": {"index.html": [f"'sha256-{digest}'"],
                                      "console.html": ["'unsafe-inline'"],
                                      "operator.html": [f"'sha256-{digest}' https://evil.example"]},
                "csp_style_hashes": {"index.html": [f"'sha256-{style_digest}'"],
                                     "console.html": ["'unsafe-inline'"]}}
    (static / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    port = free_port()
    settings = make_settings(tmp_path / "var", port=port, public_origin=f"http://localhost:{port}",
                             static_dir=str(static))
    runner, server = await start_server(settings)
    try:
        async with aiohttp.ClientSession() as http:
            _, headers, _ = await _request(http, "GET", server.url + "/")
            csp = headers["Content-Security-Policy"]
            assert csp == page_csp(static, "index.html")
            assert f"script-src 'self' 'sha256-{digest}';" in csp
            assert f"style-src 'self' 'sha256-{style_digest}';" in csp
            for path in ("/console", "/operator", "/exit", f"/assets/{FAKE_ASSET}", "/healthz"):
                _, headers, _ = await _request(http, "GET", server.url + path)
                assert headers["Content-Security-Policy"] == CSP, path
    finally:
        await runner.cleanup()


def test_the_built_youth_page_csp_holds_the_hash_and_no_unsafe_inline() -> None:
    """What the server will send for the built youth page; with no build,
    every page gets the default CSP."""
    if not (REPO_DIST / "manifest.json").is_file():
        assert page_csps(REPO_DIST) == {}
        return
    csp = page_csps(REPO_DIST)["/"]
    assert csp == page_csp(REPO_DIST, "index.html") != CSP
    assert "'sha256-" in csp and "unsafe-inline" not in csp
