"""deploy/haproxy/haproxy.cfg for real: HAProxy (TLS with a certificate made
here) in front of two real ``chatserver serve`` nodes, ``a`` and ``b``. A
long-polling session's every request reaches the node its sid names, also a
WebSocket upgrade of it; a WebSocket-first client connects through TLS; and
HAProxy's log, which has a line per request, holds no client address, no
URL and no header (docs/operations.md, "Several nodes")."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from chatserver.settings import REPO_ROOT
from tests.conftest import free_port
from tests.helpers import server_process
from tests.helpers.deploy import DEPLOY, require_tool
from tests.helpers.waiting import eventually

NODES = ("a", "b")
SESSIONS = 6  # polling sessions, spread over both nodes
ROUNDS = 12  # requests of each session, interleaved with the others' on one connection
# A client's own X-Forwarded-For: HAProxy appends the real one after it, and
# neither may reach a log.
FORGED = "203.0.113.77"


@dataclass
class Proxy:
    url: str
    plain_url: str  # the :80 bind, which only redirects
    origin: str
    ssl: ssl.SSLContext
    log: Path
    node_logs: dict[str, Path]


def _certificate(where: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost: (the PEM HAProxy loads, the CA file)."""
    openssl = require_tool("openssl", "apt-get install openssl")
    key, cert = where / "key.pem", where / "cert.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True, timeout=120)
    pem = where / "chat.pem"
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    return pem, cert


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"deploy/haproxy/haproxy.cfg no longer has {old!r}"
    return text.replace(old, new)


def _config(where: Path, pem: Path, port: int, plain_port: int,
            node_ports: dict[str, int]) -> Path:
    """The shipped file with only what is this machine's changed: where it
    listens, the certificate, the nodes' addresses, and its log going to
    stdout (a file here) instead of syslog."""
    text = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    text = _replace_once(text, "log /dev/log local0 info", "log stdout format raw local0 info")
    text = _replace_once(text, "bind :443 ssl crt /etc/haproxy/certs/chat.pem",
                         f"bind 127.0.0.1:{port} ssl crt {pem}")
    text = _replace_once(text, "bind :80\n", f"bind 127.0.0.1:{plain_port}\n")
    text = _replace_once(text, "stats socket /run/haproxy/admin.sock",
                         f"stats socket {where / 'admin.sock'}")
    text = _replace_once(text, "    daemon\n", "")
    # It needs two descriptors per connection; a test machine allows fewer.
    text = _replace_once(text, "maxconn 60000", "maxconn 4000")
    if os.geteuid() != 0:  # only root can chroot and change user
        for line in ("    chroot /var/lib/haproxy\n", "    user haproxy\n",
                     "    group haproxy\n"):
            text = _replace_once(text, line, "")
    text = _replace_once(text, "server a 10.0.0.11:8080", f"server a 127.0.0.1:{node_ports['a']}")
    text = _replace_once(text, "server b 10.0.0.12:8080", f"server b 127.0.0.1:{node_ports['b']}")
    cfg = where / "haproxy.cfg"
    cfg.write_text(text)
    return cfg


@pytest.fixture
async def proxy(tmp_path: Path) -> AsyncIterator[Proxy]:
    haproxy = require_tool("haproxy", "apt-get install haproxy; scripts/setup.sh --deploy")
    port, plain_port = free_port(), free_port()
    origin = f"https://localhost:{port}"
    node_ports = {node: free_port() for node in NODES}
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs: dict[str, Path] = {}
    try:
        for node in NODES:
            env = {**base_env, "CHAT_CONFIG": "config/test.toml", "CHAT_NODE_ID": node,
                   "CHAT_DATA_DIR": str(tmp_path / node), "CHAT_PORT": str(node_ports[node]),
                   "CHAT_PUBLIC_ORIGIN": origin, "CHAT_CLIENT_ADDR_HEADER": "X-Forwarded-For"}
            logs[node] = tmp_path / f"{node}.log"
            procs[node] = server_process.serve(env, logs[node])
        for node in NODES:
            server_process.wait_ready(f"http://127.0.0.1:{node_ports[node]}", procs[node],
                                      logs[node])
        pem, ca = _certificate(tmp_path)
        cfg = _config(tmp_path, pem, port, plain_port, node_ports)
        log = tmp_path / "haproxy.log"
        hap = _start_haproxy(haproxy, cfg, log)
        try:
            proxy = Proxy(url=origin, plain_url=f"http://127.0.0.1:{plain_port}",
                          origin=origin, ssl=ssl.create_default_context(cafile=str(ca)),
                          log=log, node_logs=logs)
            await eventually(lambda: _ready(proxy, hap), 60, 0.1)
            yield proxy
        finally:
            server_process.terminate(hap)
    finally:
        for proc in procs.values():
            server_process.stop(proc)


def _start_haproxy(haproxy: str, cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    """``haproxy -c`` first (no warning allowed either), then HAProxy in the
    foreground with its log on stdout, into ``log``."""
    checked = subprocess.run([haproxy, "-c", "-f", str(cfg)], capture_output=True,
                             text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "WARNING" not in checked.stdout + checked.stderr, checked.stdout + checked.stderr
    with log.open("wb") as out:
        return subprocess.Popen([haproxy, "-db", "-f", str(cfg)], stdout=out,
                                stderr=subprocess.STDOUT, cwd=REPO_ROOT)


async def _ready(proxy: Proxy, hap: subprocess.Popen[bytes]) -> bool:
    assert hap.poll() is None, proxy.log.read_text()
    try:
        async with aiohttp.ClientSession() as http, \
                http.get(proxy.url + "/readyz", ssl=proxy.ssl) as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


def _headers(proxy: Proxy) -> dict[str, str]:
    return {"Origin": proxy.origin, "X-Forwarded-For": FORGED}


async def _open_polling(http: aiohttp.ClientSession, proxy: Proxy) -> str:
    """An engine.io handshake over long polling, joined to /youth; its sid."""
    base = f"{proxy.url}/socket.io/?EIO=4&transport=polling"
    async with http.get(base, headers=_headers(proxy), ssl=proxy.ssl) as r:
        assert r.status == 200, await r.text()
        sid = str(json.loads((await r.text())[1:])["sid"])
    await _post(http, proxy, sid, "40/youth,")
    await _poll_until(http, proxy, sid, "40/youth,")
    return sid


async def _poll_until(http: aiohttp.ClientSession, proxy: Proxy, sid: str, wanted: str) -> None:
    """Poll until ``wanted`` arrives; a ping or a push may come first."""
    for _ in range(5):
        body = await _poll(http, proxy, sid)
        if wanted in body:
            return
        if "2" in body.split("\x1e"):
            await _post(http, proxy, sid, "3")  # answer engine.io's ping
    raise AssertionError(f"{wanted!r} did not arrive")


async def _post(http: aiohttp.ClientSession, proxy: Proxy, sid: str, data: str) -> None:
    url = f"{proxy.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    async with http.post(url, data=data, headers=_headers(proxy), ssl=proxy.ssl) as r:
        # Another node would answer 400 ("Invalid session"): it does not hold it.
        assert r.status == 200, (sid, r.status, await r.text())


async def _poll(http: aiohttp.ClientSession, proxy: Proxy, sid: str) -> str:
    url = f"{proxy.url}/socket.io/?EIO=4&transport=polling&sid={sid}"
    async with http.get(url, headers=_headers(proxy), ssl=proxy.ssl) as r:
        assert r.status == 200, (sid, r.status, await r.text())
        return await r.text()


async def test_sessions_stay_on_their_node_and_no_address_is_logged(proxy: Proxy) -> None:
    async with aiohttp.ClientSession() as http:
        # New sessions are spread over both nodes, each sid naming its node.
        sids = [await _open_polling(http, proxy) for _ in range(SESSIONS)]
        assert {sid.split(".", 1)[0] for sid in sids} == set(NODES), sids
        # Every request of every session, interleaved on one keep-alive
        # connection, is answered by the node that holds it: a status call
        # with an acknowledgement, and the poll that brings the answer.
        for n in range(1, ROUNDS + 1):
            for sid in sids:
                await _post(http, proxy, sid, f'42/youth,{n}["status",{{}}]')
                await _poll_until(http, proxy, sid, f"43/youth,{n}[")

        # A polling session upgrades to a WebSocket on its own node.
        upgraded = sids[0]
        ws_url = proxy.url.replace("https", "wss", 1) + "/socket.io/?EIO=4&transport=websocket"
        async with http.ws_connect(f"{ws_url}&sid={upgraded}", headers=_headers(proxy),
                                   ssl=proxy.ssl) as ws:
            await ws.send_str("2probe")
            assert await ws.receive_str(timeout=30) == "3probe"
            await ws.send_str("5")
            await ws.send_str('42/youth,99["status",{}]')
            await _receive_until(ws, "43/youth,99[")

        # A WebSocket-first client: TLS, upgrade, its own session on some node.
        async with http.ws_connect(ws_url, headers=_headers(proxy), ssl=proxy.ssl) as ws:
            opened = await ws.receive_str(timeout=30)
            assert opened.startswith("0")
            assert json.loads(opened[1:])["sid"].split(".", 1)[0] in NODES
            await ws.send_str("40/youth,")
            await _receive_until(ws, "40/youth,")

        # Pages: HSTS added, the backend's Server header gone; port 80 redirects.
        async with http.get(proxy.url + "/", ssl=proxy.ssl) as r:
            assert r.status == 200
            assert r.headers["Strict-Transport-Security"].startswith("max-age=63072000")
            assert "Server" not in r.headers
        async with http.get(proxy.plain_url + "/?x=1", allow_redirects=False) as r:
            assert r.status == 301
            assert r.headers["Location"].startswith("https://")

    log = await eventually(lambda: _log_with_lines(proxy.log), 30, 0.1)
    # A line per request, naming the node...
    assert "nodes/a 200" in log and "nodes/b 200" in log and " 101 " in log, log[-3000:]
    # ... and nothing about who asked or for what.
    for secret in ("127.0.0.1", FORGED, "localhost", "sid", "EIO", "socket.io", "youth",
                   *sids):
        assert secret not in log, (secret, log[-3000:])
    for node, path in proxy.node_logs.items():
        assert FORGED not in path.read_text(), node


async def _receive_until(ws: aiohttp.ClientWebSocketResponse, prefix: str) -> str:
    while True:
        msg = await ws.receive_str(timeout=30)
        if msg.startswith(prefix):
            return msg
        # pings, a noop ending a poll, pushes; never a refusal
        assert msg.startswith(("2", "6", "42/", "40/")), msg


def _log_with_lines(path: Path) -> str:
    text = path.read_text(errors="replace")
    return text if text.count("\n") >= 2 * SESSIONS * ROUNDS else ""
