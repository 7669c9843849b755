"""Shared fixtures. Real parts everywhere: real SQLite files, a real server on
a real TCP port, real socket.io clients. Only the clock is faked, and only in
domain tests. Plain helpers (waiting for a condition, the wire spy, a server
process) are in tests/helpers/; tests/unit/test_test_hygiene.py keeps each
shared helper and fixture to one definition."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest
from aiohttp import web

from chatserver.app import create_app
from chatserver.client.reference import ReferenceClient, StaffLogin, staff_login
from chatserver.domain import auth
from chatserver.settings import REPO_ROOT, Settings, load_settings
from chatserver.transport.context import Context
from chatserver.transport.http import CONTEXT

TEST_CONFIG = REPO_ROOT / "config" / "test.toml"
IN_CI = os.environ.get("CI", "").lower() == "true"


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    return load_settings(config_file=TEST_CONFIG, env={"CHAT_DATA_DIR": str(data_dir)},
                         overrides=overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "var")


# ------------------------------------------------------------------ live server





def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class StaffCreds:
    username: str
    password: str = field(repr=False)
    seed: str = field(repr=False)

    def code(self, offset_steps: int = 0) -> str:
        return str(pyotp.TOTP(self.seed).at(time.time() + 30 * offset_steps))


@dataclass
class LiveServer:
    url: str
    settings: Settings
    ctx: Context
    clients: list[ReferenceClient] = field(default_factory=list)
    _n: int = 0

    @property
    def origin(self) -> str:
        return self.settings.public_origin

    async def add_staff(self, role: str = "counsellor", capacity: int = 3,
                        alias: str | None = None) -> StaffCreds:
        self._n += 1
        username = f"{role}{self._n}"
        password = f"correct horse battery {self._n}"
        created = await auth.add_account(
            username, password, role=role, alias=alias or f"Alias {self._n}",
            capacity=capacity, actor="test", store=self.ctx.store, audit=self.ctx.audit,
            clock=self.ctx.clock, settings=self.settings, guard=self.ctx.login_guard)
        return StaffCreds(username, password, created.totp_seed)

    async def login(self, creds: StaffCreds) -> StaffLogin:
        return await staff_login(self.url, creds.username, creds.password, creds.code())

    async def youth(self) -> ReferenceClient:
        client = ReferenceClient()
        await client.connect(self.url, "/youth")
        self.clients.append(client)
        return client

    async def liaison(self) -> ReferenceClient:
        client = ReferenceClient()
        await client.connect(self.url, "/liaison")
        self.clients.append(client)
        return client

    async def staff_client(self, creds: StaffCreds | None = None, *, duty: bool = True,
                           capacity: int = 3) -> ReferenceClient:
        creds = creds or await self.add_staff(capacity=capacity)
        login = await self.login(creds)
        client = ReferenceClient()
        await client.connect(self.url, "/staff", headers={"Cookie": login.cookie})
        self.clients.append(client)
        if duty:
            await client.duty(True)
        return client

    async def chat(self) -> tuple[ReferenceClient, ReferenceClient, str]:
        """A youth and a counsellor (a new account, on duty) in one active
        conversation at epoch 1: (youth, counsellor, conversation id)."""
        counsellor = await self.staff_client()
        youth = await self.youth()
        conv = (await youth.start())["conversation"]
        await counsellor.claim(conv)
        await youth.wait_for(lambda: youth.conversations[conv].epoch == 1, 5)
        return youth, counsellor, conv


async def start_server(settings: Settings) -> tuple[web.AppRunner, LiveServer]:
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = int(settings.public_origin.rsplit(":", 1)[1])
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return runner, LiveServer(url=f"http://localhost:{port}", settings=settings,
                              ctx=app[CONTEXT])


@pytest.fixture
async def live_server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    port = free_port()
    settings = make_settings(tmp_path / "var", port=port,
                             public_origin=f"http://localhost:{port}")
    runner, server = await start_server(settings)
    try:
        yield server
    finally:
        for client in server.clients:
            await client.close()
        await runner.cleanup()


MakeServer = Callable[..., Awaitable[LiveServer]]


@pytest.fixture
async def make_server(tmp_path: Path) -> AsyncIterator[MakeServer]:
    """Start live servers with settings overrides (e.g. ``personal_wait_secs=1``)."""
    started: list[tuple[web.AppRunner, LiveServer]] = []

    async def make(**overrides: Any) -> LiveServer:
        port = free_port()
        settings = make_settings(tmp_path / f"var{len(started)}", port=port,
                                 public_origin=f"http://localhost:{port}", **overrides)
        runner, server = await start_server(settings)
        started.append((runner, server))
        return server

    yield make
    for runner, server in started:
        for client in server.clients:
            await client.close()
        await runner.cleanup()

