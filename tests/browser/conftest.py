"""Fixtures for the real-Chromium tests of the three pages in web_client/.

One server per test module: the real ``chatserver serve`` in a subprocess
(config/test.toml, a temporary data dir, a free port;
tests/helpers/server_process.py), plus a tiny neutral
page on another port that stands in for the configured exit site and records
when each request arrives. Debian's chromium, driven by Python Playwright's
async API; every module gets one browser and fresh contexts per test.

In CI (``CI=true``) a missing chromium or an unbuilt web client FAILS; locally
the tests are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest
import pytest_asyncio

from chatserver.client.reference import ReferenceClient
from tests.conftest import free_port
from tests.helpers import server_process

REPO = Path(__file__).resolve().parents[2]
DIST = REPO / "web_client" / "dist"
AXE_JS = REPO / "web_client" / "node_modules" / "axe-core" / "axe.min.js"
VECTORS = REPO / "tests" / "data" / "e2e_vectors.json"
CHROMIUM = os.environ.get("CHAT_CHROMIUM", "/usr/bin/chromium")
# Flags from the browser-tests brief: no sandbox (containers), no GPU, no QUIC,
# nothing that phones home or writes unrelated state into the profile.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IN_CI = os.environ.get("CI", "").lower() == "true"
STAFF_PASSWORD = "correct horse battery staple"  # test accounts only

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 860}


def require(condition: bool, why: str) -> None:
    """Skip locally, fail in CI: a browser test must never silently not run there."""
    if condition:
        return
    if IN_CI:
        pytest.fail(why, pytrace=False)
    pytest.skip(why)


def require_chromium() -> None:
    require(Path(CHROMIUM).exists(),
            f"chromium not found at {CHROMIUM} (scripts/setup.sh --browser)")


# ---------------------------------------------------------------- neutral site


class NeutralSite:
    """The stand-in for the neutral exit site; records (path, arrival time)."""

    def __init__(self) -> None:
        self.hits: list[tuple[str, float]] = []
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.hits.append((self.path, time.time()))
                body = b"<!doctype html><title>Neutral</title><p>A neutral page.</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/neutral"

    def arrivals(self) -> list[float]:
        return [t for path, t in self.hits if path.startswith("/neutral")]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- the server


@dataclass
class StaffAccount:
    username: str
    alias: str
    role: str
    password: str = field(repr=False)
    secret: str = field(repr=False)
    _last_step: int = -1

    async def code(self) -> str:
        # The server refuses a TOTP step it has already accepted; tests log each
        # account in once, but wait for a fresh step if one is ever reused.
        if int(time.time() // 30) == self._last_step:
            await asyncio.sleep(30 - time.time() % 30 + 0.2)
        self._last_step = int(time.time() // 30)
        return str(pyotp.TOTP(self.secret).now())


class ChatServer:
    """``chatserver serve`` in a subprocess, exactly as an operator runs it.
    ``settings`` overrides config/test.toml the way an operator would, as
    ``CHAT_*`` variables (e.g. ``{"max_anonymous_connections": 1}``)."""

    def __init__(self, data_dir: Path, exit_url: str,
                 settings: dict[str, object] | None = None) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.env = {
            **os.environ,
            "CHAT_CONFIG": str(REPO / "config" / "test.toml"),
            "CHAT_DATA_DIR": str(data_dir),
            "CHAT_PORT": str(self.port),
            "CHAT_PUBLIC_ORIGIN": f"http://localhost:{self.port}",
            "CHAT_EXIT_URL": exit_url,
            **{f"CHAT_{key.upper()}": str(value) for key, value in (settings or {}).items()},
        }
        self.log_path = data_dir / "server.log"
        self._n = 0
        data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = server_process.serve(self.env, self.log_path)
        server_process.wait_ready(self.url, self.proc, self.log_path)

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def add_staff(self, role: str = "counsellor", alias: str | None = None) -> StaffAccount:
        self._n += 1
        username = f"{role}{self._n}"
        alias = alias or f"Sam {self._n}"
        secret = server_process.add_staff(self.env, username, STAFF_PASSWORD, alias=alias,
                                          role=role)
        return StaffAccount(username, alias, role, STAFF_PASSWORD, secret)

    def stop(self) -> None:
        server_process.stop(self.proc)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def neutral() -> Iterator[NeutralSite]:
    site = NeutralSite()
    yield site
    site.close()


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory: pytest.TempPathFactory, neutral: NeutralSite
                ) -> Iterator[ChatServer]:
    require((DIST / "index.html").is_file(),
            "web_client/dist is not built (run scripts/setup.sh or `npm run build` in web_client/)")
    server = ChatServer(tmp_path_factory.mktemp("chatserver"), neutral.url)
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield SwedishBrowser(b)
        finally:
            await b.close()


class SwedishBrowser:
    """The module's browser, whose contexts ask for Swedish (Accept-Language
    sv-SE) unless a test passes another ``locale``: the server writes the
    youth page in the language the browser asks for, and the tests read its
    Swedish texts (Chromium would otherwise ask for en-US)."""

    def __init__(self, browser: Any) -> None:
        self._browser = browser

    async def new_context(self, **kwargs: Any) -> Any:
        kwargs.setdefault("locale", "sv-SE")
        return await self._browser.new_context(**kwargs)

    async def new_page(self, **kwargs: Any) -> Any:
        kwargs.setdefault("locale", "sv-SE")
        return await self._browser.new_page(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._browser, name)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def playwright_instance() -> AsyncIterator[Any]:
    """For tests that launch their own browser (persistent profile, private window)."""
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        yield pw


def vectors() -> dict[str, Any]:
    return json.loads(VECTORS.read_text(encoding="utf-8"))


# Reference clients a browser test opens beside its pages, closed after it.
@pytest_asyncio.fixture(loop_scope="module")
async def clients() -> AsyncIterator[list[ReferenceClient]]:
    made: list[ReferenceClient] = []
    yield made
    for c in made:
        await c.close()
