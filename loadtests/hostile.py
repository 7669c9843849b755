"""The hostile-client scenario: what one anonymous client on one address can
do to a node, measured on a neighbouring conversation and on the server's
memory (docs/hostile-client.md holds the figures).

    python -m loadtests.hostile [--out DIR] [--phase-secs N] [--small] [--name NAME]
                                [--attacks binary,flood,slowloris,hold]

One real chatserver process (``servers.start("chat")``) runs with the
connection bounds as shipped (``Settings`` defaults: loadtests/load.toml lifts
them for the ordinary runs, and they are put back here). The per-connection
rate limits stay lifted: the neighbour sends five messages a second, above
a person's pace, and the attacks send no events.

A neighbour — one youth and one counsellor, the reference client, real E2E —
exchanges a message every ~200 ms; each message's relay latency is send →
the other side decrypts it. The phases:

0. slowloris probe, on a fresh server process of its own started and
   stopped first: only the slowloris sockets, to measure what each costs the
   server (no in-process bound covers them). Its own process, because the
   memory a probe frees stays in the allocator and would hide the attack's;
1. warm-up (not counted);
2. quiet, N s: the neighbour's latency, the server's VmRSS every 0.5 s;
3. attack, N s: the hostile client (loadtests/attacks.py, its own process)
   runs every attack at once from 127.0.0.1;
4. drain: until the server has let go of what the attack held (at most
   ``handshake_join_secs`` + 5 s).

It writes DIR/hostile.json and DIR/hostile.md: quiet against attack latency,
RSS and its bound, what each attack got, what the server held at the peak,
the neighbour's integrity (sent = received), and the machine's load. This is
a measurement: PASS/FAIL in the report, never a timing assert. ``--small``
(2 s phases, tens of sockets, no probe, the attacker not niced) is the CI
smoke's size (tests/integration/test_loadtest_smoke.py): it checks
integrity, not figures.

Bounded: every loop and process stops by itself (the attacker is killed 60 s
after its deadline); everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pyotp

from chatserver.client.reference import CallFailed, ReferenceClient, staff_login
from chatserver.settings import REPO_ROOT, Settings
from loadtests import runner
from loadtests.attacks import ATTACKS, HOLD_WORKERS
from loadtests.servers import NO_RATE_LIMITS, PYTHON, Server, cores, free_port, pinned, start

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

BOUND_KEYS = ("max_connections_per_address", "max_pending_handshakes_per_address",
              "max_pending_handshakes", "handshake_join_secs", "max_anonymous_connections")
SHIPPED_BOUNDS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(Settings)
                                  if f.name in BOUND_KEYS}
# docs/performance.md, "RSS per idle youth" (memprobe, 4 000 connections).
SESSION_KB = 27.0
ALLOCATOR_SLACK = 0.5  # see the bound in summarise()
# docs/decisions/0007: what each closed WebSocket leaves in a reference cycle
# until the full collection (gc_full_collect_after_websockets).
CLOSED_WEBSOCKET_KB = 14.2
SAMPLE_SECS = 0.5
MESSAGE_INTERVAL_SECS = 0.2
TARGET_P99_RATIO = 2.0
ATTACKER_NICE = "10"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LAG_TICK_SECS = 0.02


@dataclass(frozen=True)
class Sizes:
    phase_secs: float
    warmup_secs: float = 3.0
    probe_secs: float = 8.0
    drain_secs: float = SHIPPED_BOUNDS["handshake_join_secs"] + 5.0
    slowloris: int = 1000
    hold: int = 1000
    binary_loops: int = 2
    flood_workers: int = 16
    nice_attacker: bool = True
    probe: bool = True
    attacks: tuple[str, ...] = ATTACKS


def sizes(phase_secs: float, small: bool, attacks: tuple[str, ...] = ATTACKS) -> Sizes:
    if small:
        return Sizes(phase_secs=phase_secs, warmup_secs=0.5, drain_secs=1.0,
                     slowloris=20, hold=20, binary_loops=1, flood_workers=4,
                     nice_attacker=False, probe=False, attacks=attacks)
    return Sizes(phase_secs=phase_secs, attacks=attacks)


# ------------------------------------------------------------------ the neighbour

@dataclass
class Message:
    phase: str
    sent_at: float
    received_at: float | None = None


@dataclass
class Neighbour:
    """One youth and one counsellor in one conversation, taking turns."""

    youth: ReferenceClient
    staff: ReferenceClient
    conversation: str
    phase: str = "warmup"
    messages: dict[str, Message] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    unexpected: int = 0
    received: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _caught_up: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    async def open(cls, server: Server, account: dict[str, Any]) -> Neighbour:
        login = await staff_login(server.base, account["username"], account["password"],
                                  pyotp.TOTP(account["totp_secret"]).now(), origin=server.origin)
        staff, youth = ReferenceClient(call_timeout=30), ReferenceClient(call_timeout=30)
        await staff.connect(server.base, "/staff",
                            headers={"Cookie": login.cookie, "Origin": server.origin})
        await staff.duty(True)
        await youth.connect(server.base, "/youth", headers={"Origin": server.origin})
        conversation = (await youth.start())["conversation"]
        await staff.claim(conversation)
        await youth.wait_for(lambda: youth.conversations[conversation].state == "active", 30)
        return cls(youth, staff, conversation)

    async def run(self, stop: asyncio.Event) -> None:
        readers = [asyncio.ensure_future(self._read(c)) for c in (self.youth, self.staff)]
        try:
            tick = time.monotonic()
            i = 0
            while not stop.is_set():
                i += 1
                sender = self.youth if i % 2 else self.staff
                task = asyncio.ensure_future(self._send(sender, f"n{i}"))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                tick += MESSAGE_INTERVAL_SECS  # a fixed cadence, whatever the acks do
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, tick - time.monotonic()))
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=35)
            # What is still in flight gets a bounded wait; what never comes is lost.
            if self.outstanding():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._caught_up.wait(), 15)
        finally:
            for r in readers:
                r.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    def outstanding(self) -> int:
        return len(self.messages) - self.received

    async def _send(self, sender: ReferenceClient, text: str) -> None:
        self.messages[text] = Message(self.phase, time.monotonic())
        try:
            await sender.send_text(self.conversation, text)
        except (CallFailed, TimeoutError, OSError) as exc:
            self.errors[getattr(exc, "code", type(exc).__name__)] += 1

    async def _read(self, client: ReferenceClient) -> None:
        while True:
            got = await client.inbox.get()
            now = time.monotonic()
            message = self.messages.get(got.text)
            if message is None or message.received_at is not None:
                self.unexpected += 1
            else:
                message.received_at = now
                self.received += 1
                if not self.outstanding():
                    self._caught_up.set()

    def latencies_ms(self, phase: str) -> list[float]:
        return [(m.received_at - m.sent_at) * 1000 for m in self.messages.values()
                if m.phase == phase and m.received_at is not None]

    def integrity(self) -> dict[str, Any]:
        sent = len(self.messages)
        return {
            "sent": sent, "received": self.received, "lost": sent - self.received,
            "send_errors": dict(self.errors), "unexpected": self.unexpected,
            "undecryptable": self.youth.undecryptable + self.staff.undecryptable,
            "gaps": len(self.youth.gaps) + len(self.staff.gaps),
            "replays": self.youth.replays + self.staff.replays,
            "youth_connected": self.youth.connected, "staff_connected": self.staff.connected,
        }

    async def close(self) -> None:
        for c in (self.youth, self.staff):
            await c.close()


# ------------------------------------------------------------------ the server's side

def _proc_status(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status", "rb") as fh:
        for line in fh:
            if line.startswith((b"VmRSS", b"VmHWM")):
                key, value = line.split(b":", 1)
                out[key.decode()] = int(value.split()[0])
    return out


def _cpu_secs(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (/proc/<pid>/stat)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # utime and stime are the 14th and 15th fields; the first two are gone.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text → {"name{labels}": value}, comments dropped."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        with contextlib.suppress(ValueError):
            out[name] = float(value)
    return out


@dataclass
class Sampler:
    pid: int
    metrics_url: str
    phase: str = "warmup"
    samples: list[dict[str, Any]] = field(default_factory=list)
    # This process's own event-loop stalls, by phase: a message that waits
    # here for the CPU is late through no fault of the server's.
    lag_ms: dict[str, float] = field(default_factory=dict)

    async def watch_lag(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            before = time.monotonic()
            await asyncio.sleep(LAG_TICK_SECS)
            late = (time.monotonic() - before - LAG_TICK_SECS) * 1000
            self.lag_ms[self.phase] = round(max(self.lag_ms.get(self.phase, 0.0), late), 1)

    async def run(self, stop: asyncio.Event) -> None:
        lag = asyncio.ensure_future(self.watch_lag(stop))
        try:
            await self._sample(stop)
        finally:
            await asyncio.gather(lag, return_exceptions=True)

    async def _sample(self, stop: asyncio.Event) -> None:
        started = time.monotonic()
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while not stop.is_set():
                status = _proc_status(self.pid)
                row: dict[str, Any] = {"t": round(time.monotonic() - started, 2),
                                       "phase": self.phase, "rss_kb": status.get("VmRSS", 0),
                                       "hwm_kb": status.get("VmHWM", 0), "fds": _fds(self.pid),
                                       "cpu_secs": _cpu_secs(self.pid)}
                try:
                    async with http.get(self.metrics_url) as resp:
                        m = parse_metrics(await resp.text())
                    row["youth_connections"] = m.get('chat_connections{kind="youth"}')
                    row["pending_handshakes"] = m.get("chat_pending_handshakes")
                    row["refused_too_many_connections"] = m.get(
                        'chat_handshakes_refused_total{reason="too_many_connections"}')
                    row["refused_too_many_handshakes"] = m.get(
                        'chat_handshakes_refused_total{reason="too_many_handshakes"}')
                    row["binary_refused"] = m.get("chat_binary_packets_refused_total")
                except (aiohttp.ClientError, OSError, TimeoutError):
                    row["metrics"] = "unavailable"
                self.samples.append(row)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), SAMPLE_SECS)

    def of(self, phase: str, key: str) -> list[float]:
        return [s[key] for s in self.samples
                if s["phase"] == phase and isinstance(s.get(key), int | float)]

    def last(self, key: str) -> float:
        values = [s[key] for s in self.samples if isinstance(s.get(key), int | float)]
        return values[-1] if values else 0.0


# ------------------------------------------------------------------ the hostile client

async def run_attacker(server: Server, plan: dict[str, Any], out: Path, label: str,
                       root: Path, nice: bool = True) -> dict[str, Any]:
    """loadtests/attacks.py in its own process, on the generator core, niced
    (``nice``): its CPU is not the neighbour's, so the latency figures measure
    the server. The smoke does not nice it: on a loaded machine a niced
    process gets next to no CPU, and the smoke measures no latency."""
    plan_path = out / "logs" / f"attack-{label}.json"
    plan_path.write_text(json.dumps({"base": server.base, "origin": server.origin, **plan}))
    _, gen_core = cores()
    cmd = pinned([PYTHON, "-m", "loadtests.attacks", str(plan_path)], gen_core)
    if nice:
        cmd = ["nice", "-n", ATTACKER_NICE, *cmd]
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), plan["secs"] + 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return {"fatal": "the attacker did not stop by itself; killed"}
    (out / "logs" / f"attack-{label}.stderr").write_bytes(stderr)
    lines = [ln for ln in stdout.decode().splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = stderr.decode(errors="replace").strip().splitlines()[-3:]
        return {"fatal": f"attacker exit {proc.returncode}: {' | '.join(tail)}"}
    return dict(json.loads(lines[-1]))


# ------------------------------------------------------------------ the run

def percentiles(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(q: float) -> float:  # nearest rank
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
    return {"n": len(ordered), "p50": round(rank(0.50), 1), "p99": round(rank(0.99), 1),
            "max": round(ordered[-1], 1), "mean": round(statistics.fmean(ordered), 1)}


async def _phase(secs: float, name: str, neighbour: Neighbour, sampler: Sampler) -> None:
    neighbour.phase = sampler.phase = name
    await asyncio.sleep(secs)


async def _drain(sampler: Sampler, phase: str, baseline_fds: float, secs: float) -> float:
    """Wait until the server holds no more sockets than in the quiet phase and
    no pending handshake, at most ``secs``; returns how long that took."""
    sampler.phase = phase
    started = time.monotonic()
    while time.monotonic() - started < secs:
        await asyncio.sleep(SAMPLE_SECS)
        if sampler.last("fds") <= baseline_fds and not sampler.last("pending_handshakes"):
            break
    return round(time.monotonic() - started, 1)


async def scenario(server: Server, account: dict[str, Any], size: Sizes, out: Path,
                   root: Path) -> dict[str, Any]:
    metrics_url = f"http://127.0.0.1:{server.settings['metrics_port']}/metrics"
    sampler = Sampler(server.pid, metrics_url)
    neighbour = await Neighbour.open(server, account)
    stop_sampler, stop_neighbour = asyncio.Event(), asyncio.Event()
    sampling = asyncio.ensure_future(sampler.run(stop_sampler))
    chatting = asyncio.ensure_future(neighbour.run(stop_neighbour))
    doc: dict[str, Any] = {}
    try:
        await _phase(size.warmup_secs, "warmup", neighbour, sampler)
        await _phase(size.phase_secs, "quiet", neighbour, sampler)
        quiet_fds = max(sampler.of("quiet", "fds"), default=0)
        neighbour.phase = sampler.phase = "attack"
        doc["attack"] = await run_attacker(server, {
            "secs": size.phase_secs, "attacks": list(size.attacks),
            "slowloris": size.slowloris, "hold": size.hold,
            "binary_loops": size.binary_loops, "flood_workers": size.flood_workers,
        }, out, "attack", root, nice=size.nice_attacker)
        neighbour.phase = "drain"
        doc["drain_secs"] = await _drain(sampler, "drain", quiet_fds, size.drain_secs)
        doc["held_after_drain"] = {"fds": sampler.last("fds"),
                                   "pending_handshakes": sampler.last("pending_handshakes"),
                                   "youth_connections": sampler.last("youth_connections")}
        doc["vm_hwm_kb"] = _proc_status(server.pid).get("VmHWM", 0)
    finally:
        stop_neighbour.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(chatting, 60)
        stop_sampler.set()
        await asyncio.gather(sampling, return_exceptions=True)
        doc["neighbour"] = {"quiet": percentiles(neighbour.latencies_ms("quiet")),
                            "attack": percentiles(neighbour.latencies_ms("attack")),
                            **neighbour.integrity()}
        await neighbour.close()
    doc["samples"] = sampler.samples
    doc["client_lag_ms"] = sampler.lag_ms
    return doc


async def probe_slowloris(server: Server, size: Sizes, out: Path, root: Path
                          ) -> dict[str, Any]:
    """What one slowloris socket costs a server that holds nothing else."""
    metrics_url = f"http://127.0.0.1:{server.settings['metrics_port']}/metrics"
    sampler = Sampler(server.pid, metrics_url, phase="before")
    stop = asyncio.Event()
    sampling = asyncio.ensure_future(sampler.run(stop))
    try:
        await asyncio.sleep(4 * SAMPLE_SECS)
        sampler.phase = "probe"
        attack = await run_attacker(server, {
            "secs": size.probe_secs, "attacks": ["slowloris"], "slowloris": size.slowloris,
        }, out, "probe", root)
    finally:
        stop.set()
        await asyncio.gather(sampling, return_exceptions=True)
    before = sampler.of("before", "rss_kb")
    rss_before = before[-1] if before else 0
    rss_peak = _max(sampler.of("probe", "rss_kb"))
    hwm_end = _proc_status(server.pid).get("VmHWM", 0)
    if hwm_end > _max(sampler.of("before", "hwm_kb")):  # a peak between two samples
        rss_peak = max(rss_peak, hwm_end)
    sockets = int(attack.get("attacks", {}).get("slowloris", {}).get("peak_live", 0))
    fds_added = _max(sampler.of("probe", "fds")) - _max(sampler.of("before", "fds"))
    return {"attacker": attack, "sockets": sockets, "rss_before_kb": rss_before,
            "rss_peak_kb": rss_peak, "rss_added_kb": rss_peak - rss_before,
            "server_fds_added": fds_added,
            "per_socket_kb": round((rss_peak - rss_before) / sockets, 2) if sockets else 0.0,
            "samples": sampler.samples}


def _max(values: list[float]) -> float:
    return max(values, default=0.0)


def summarise(raw: dict[str, Any], probe: dict[str, Any], size: Sizes,
              server_settings: dict[str, Any]) -> dict[str, Any]:
    """The figures the report states, from the raw run."""
    samples = raw["samples"]

    def of(phase: str, key: str) -> list[float]:
        return [s[key] for s in samples if s["phase"] == phase
                and isinstance(s.get(key), int | float)]

    quiet_rss = of("quiet", "rss_kb")
    attack_rss = of("attack", "rss_kb")
    rss_quiet = quiet_rss[-1] if quiet_rss else 0
    rss_peak = _max(attack_rss + of("drain", "rss_kb"))
    # A peak between two samples still shows in VmHWM, if it rose after the
    # quiet phase.
    hwm_quiet = _max(of("quiet", "hwm_kb"))
    hwm_end = raw.get("vm_hwm_kb") or 0
    if hwm_end > hwm_quiet:
        rss_peak = max(rss_peak, hwm_end)
    half = attack_rss[len(attack_rss) // 2:] if attack_rss else []

    per_socket_kb = float(probe.get("per_socket_kb", 0.0))
    attacks = raw.get("attack", {}).get("attacks", {})
    binary = attacks.get("binary", {}).get("counts", {})
    ws_opened = (binary.get("headers_sent", 0)
                 + attacks.get("hold", {}).get("counts", {}).get("accepted", 0))
    sessions = (server_settings["max_connections_per_address"]
                + server_settings["max_pending_handshakes_per_address"])
    # Every TCP connection the attacker has open outside a session: the
    # slowloris sockets, and one per attack loop with a request in flight
    # (a refused handshake is a connection and a request, never a session).
    in_flight = size.flood_workers + size.binary_loops + HOLD_WORKERS
    tcp = size.slowloris + in_flight
    # The allocator keeps what the attack's tens of thousands of parsed and
    # answered requests freed (pymalloc arenas, the C heap), which the probe
    # on a fresh process does not see; the slack is half the held total.
    # Runs showed 6.5-9.3 MB of growth against a held total of 7.6-8.0 MB.
    held_kb = sessions * SESSION_KB + tcp * per_socket_kb
    bound_kb = held_kb * (1 + ALLOCATOR_SLACK)
    growth_kb = rss_peak - rss_quiet

    quiet_q = raw["neighbour"]["quiet"]
    attack_q = raw["neighbour"]["attack"]
    ratio = (attack_q["p99"] / quiet_q["p99"]
             if quiet_q.get("p99") and attack_q.get("p99") is not None else None)
    p50_ratio = (attack_q["p50"] / quiet_q["p50"]
                 if quiet_q.get("p50") and attack_q.get("p50") is not None else None)

    def delta(key: str) -> float:
        vals = [s[key] for s in samples if isinstance(s.get(key), int | float)]
        before = [s[key] for s in samples[: _first_index(samples, "attack")]
                  if isinstance(s.get(key), int | float)]
        return (vals[-1] if vals else 0) - (before[-1] if before else 0)

    def cpu_share(phase: str) -> int | None:
        rows = [s for s in samples if s["phase"] == phase and "cpu_secs" in s]
        if len(rows) < 2 or rows[-1]["t"] <= rows[0]["t"]:
            return None
        used = float(rows[-1]["cpu_secs"] - rows[0]["cpu_secs"])
        secs = float(rows[-1]["t"] - rows[0]["t"])
        return round(100 * used / secs)

    pending_peak = _max(of("attack", "pending_handshakes"))
    youth_peak = _max(of("attack", "youth_connections"))
    return {
        "latency_ms": {"quiet": quiet_q, "attack": attack_q,
                       "p99_ratio": round(ratio, 2) if ratio is not None else None,
                       "p50_ratio": round(p50_ratio, 2) if p50_ratio is not None else None,
                       "client_max_stall": raw.get("client_lag_ms", {})},
        "server_cpu_percent": {"quiet": cpu_share("quiet"), "attack": cpu_share("attack")},
        "memory_kb": {
            "rss_quiet": rss_quiet,
            "rss_peak_attack": rss_peak, "growth": growth_kb,
            "growth_second_half_of_attack": (half[-1] - half[0]) if half else 0,
            "vm_hwm_end": raw.get("vm_hwm_kb"),
            "rss_after_drain": samples[-1]["rss_kb"] if samples else 0,
            "slowloris_probe": {k: v for k, v in probe.items()
                                if k not in ("samples", "attacker")},
            "bound": {
                "sessions": sessions, "session_kb": SESSION_KB,
                "tcp_connections": tcp, "slowloris_sockets": size.slowloris,
                "requests_in_flight": in_flight,
                "tcp_kb_each": per_socket_kb,
                "held_kb": round(held_kb),
                "allocator_slack": ALLOCATOR_SLACK,
                "total_kb": round(bound_kb),
                "closed_websockets": ws_opened,
                "closed_websocket_cycles_kb": round(ws_opened * CLOSED_WEBSOCKET_KB),
            },
        },
        "server_held_peak": {
            "fds_quiet": _max(of("quiet", "fds")), "fds_attack": _max(of("attack", "fds")),
            "youth_connections": youth_peak, "pending_handshakes": pending_peak,
            "refused_too_many_connections": delta("refused_too_many_connections"),
            "refused_too_many_handshakes": delta("refused_too_many_handshakes"),
            "binary_refused": delta("binary_refused"),
        },
        "bound_sessions_held": youth_peak + pending_peak,
    }


def _first_index(samples: list[dict[str, Any]], phase: str) -> int:
    return next((i for i, s in enumerate(samples) if s["phase"] == phase), len(samples))


def targets(summary: dict[str, Any], raw: dict[str, Any], server_settings: dict[str, Any]
            ) -> list[dict[str, Any]]:
    lat = summary["latency_ms"]
    mem = summary["memory_kb"]
    n = raw["neighbour"]
    attacks = raw.get("attack", {}).get("attacks", {})
    binary = attacks.get("binary", {}).get("counts", {})
    flood = attacks.get("flood", {}).get("counts", {})
    per_address = server_settings["max_connections_per_address"]
    ratio = lat["p99_ratio"]
    ran = set(attacks)
    rows: list[tuple[str, str, bool | None]] = [
        ("neighbour p99 under attack ≤ 2 × quiet p99",
         f"{lat['attack']['p99']} ms / {lat['quiet']['p99']} ms = {ratio}×",
         ratio is not None and ratio <= TARGET_P99_RATIO),
        ("neighbour loses no message (integrity)",
         f"sent {n['sent']}, received {n['received']}, lost {n['lost']}, "
         f"undecryptable {n['undecryptable']}, send errors {sum(n['send_errors'].values())}",
         n["lost"] == 0 and n["undecryptable"] == 0 and not n["send_errors"]
         and n["youth_connected"] and n["staff_connected"]),
        ("RSS growth during the attack ≤ the stated bound",
         f"{mem['growth']:,.0f} KB ≤ {mem['bound']['total_kb']:,} KB"
         if mem["bound"]["tcp_kb_each"] else "not measured (no slowloris probe with --small)",
         None if not mem["bound"]["tcp_kb_each"] else mem["growth"] <= mem["bound"]["total_kb"]),
        ("every binary attack the server admitted was closed",
         f"{binary.get('headers_sent', 0)} headers sent, "
         f"{binary.get('closed_by_server', 0)} closed, {binary.get('not_closed', 0)} not closed",
         None if "binary" not in ran else
         binary.get("headers_sent", 0) > 0 and binary.get("not_closed", 0) == 0
         and binary.get("closed_by_server", 0) == binary.get("headers_sent", 0)),
        ("the handshake flood is refused (401)",
         f"{sum(v for k, v in flood.items() if k.startswith('refused_401'))} of "
         f"{flood.get('requests', 0)} refused",
         None if "flood" not in ran else any(k.startswith("refused_401") for k in flood)),
        (f"anonymous sessions held at the peak ≤ max_connections_per_address ({per_address})",
         f"{summary['bound_sessions_held']:.0f} (joined + pending, sampled every "
         f"{SAMPLE_SECS} s)",
         summary["bound_sessions_held"] <= per_address),
    ]
    return [{"target": t, "measured": m,
             "verdict": "n/a" if ok is None else "PASS" if ok else "FAIL"} for t, m, ok in rows]


# ------------------------------------------------------------------ the report

def _p99_rank(n: int) -> str:
    """Which value the nearest-rank p99 of ``n`` values is, counted from the top."""
    k = n - math.ceil(0.99 * n) + 1
    return "largest" if k <= 1 else f"{k}{'nd' if k == 2 else 'rd' if k == 3 else 'th'}-largest"


def _load(doc_load: dict[str, Any]) -> str:
    one, five, fifteen = doc_load["loadavg"]
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def render(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    lat, mem, held = s["latency_ms"], s["memory_kb"], s["server_held_peak"]
    m = doc["machine"]
    out: list[str] = []
    w = out.append
    w(f"# Hostile client: `{doc['name']}`\n")
    w(f"`{doc['command']}` — phases of {doc['sizes']['phase_secs']:g} s. Machine: {m['cpu']}, "
      f"{m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}, aiohttp "
      f"{m['aiohttp']}, python-socketio {m['python_socketio']}, python-engineio "
      f"{m['python_engineio']}; commit {m['git']}"
      f"{' (working tree changed)' if m['git_dirty'] else ''}.\n")
    w(f"Load average (1/5/15 min) before: {_load(doc['load_before'])}; after: "
      f"{_load(doc['load_after'])}.")
    if doc["machine_busy"]:
        w(f"**The machine was busy (load above its {m['cores']} cores): the latency figures "
          "are unreliable, both phases alike; compare the ratio, not the milliseconds.**")
    w("")
    w("## Targets\n")
    w("| target | measured | verdict |")
    w("|---|---|---|")
    for t in doc["targets"]:
        w(f"| {t['target']} | {t['measured']} | **{t['verdict']}** |")
    w("")
    w("## The neighbour's relay latency (send → the other side decrypts it), ms\n")
    w("| phase | messages | p50 | p99 | max | mean |")
    w("|---|---|---|---|---|---|")
    for phase in ("quiet", "attack"):
        q = lat[phase]
        w(f"| {phase} | {q['n']} | {q['p50']} | {q['p99']} | {q['max']} | {q.get('mean')} |")
    w(f"\nAttack / quiet: p50 {lat['p50_ratio']}×, p99 {lat['p99_ratio']}× (target ≤ "
      f"{TARGET_P99_RATIO:g}×). One message every {MESSAGE_INTERVAL_SECS} s, youth and "
      f"counsellor taking turns; the p99 of {lat['attack']['n']} messages is their "
      f"{_p99_rank(lat['attack']['n'])}.")
    stall = lat["client_max_stall"]
    cpu = s["server_cpu_percent"]
    w(f"\nThe measuring process's own longest event-loop stall: {stall.get('quiet')} ms quiet, "
      f"{stall.get('attack')} ms in the attack (a stall delays the messages it holds, whatever "
      f"the server does). The server's CPU: {cpu['quiet']} % of a core quiet, "
      f"{cpu['attack']} % in the attack.")
    n = doc["raw"]["neighbour"]
    w(f"\nIntegrity over the whole run: sent {n['sent']}, received {n['received']}, lost "
      f"{n['lost']}, undecryptable {n['undecryptable']}, gaps {n['gaps']}, replays "
      f"{n['replays']}, send errors {n['send_errors'] or 0}; youth still connected: "
      f"{n['youth_connected']}, counsellor: {n['staff_connected']}.\n")
    w("## Server memory (VmRSS, sampled every 0.5 s), KB\n")
    b = mem["bound"]
    probe = mem["slowloris_probe"]
    w("| quiet | peak in the attack (VmHWM if it rose higher) | growth "
      "| growth, second half of the attack | after drain | VmHWM at the end |")
    w("|---|---|---|---|---|---|")
    w(f"| {mem['rss_quiet']:,} | {mem['rss_peak_attack']:,} | "
      f"{mem['growth']:,} | {mem['growth_second_half_of_attack']:,} | "
      f"{mem['rss_after_drain']:,} | {mem['vm_hwm_end']:,} |")
    w(f"\nStated bound: ({doc['settings']['max_connections_per_address']} + "
      f"{doc['settings']['max_pending_handshakes_per_address']}) sessions × {b['session_kb']} KB "
      f"(docs/performance.md, RSS per idle youth) + {b['tcp_connections']} TCP connections "
      f"({b['slowloris_sockets']} slowloris sockets and {b['requests_in_flight']} requests in "
      f"flight) × {b['tcp_kb_each']} KB (measured on a fresh server process: "
      f"{probe.get('sockets', 0)} slowloris sockets, +{probe.get('server_fds_added', 0):.0f} "
      f"server fds, +{probe.get('rss_added_kb', 0):,} KB RSS) = {b['held_kb']:,} KB, "
      f"plus {b['allocator_slack']:.0%} for what the allocator keeps of the requests the "
      f"attack made the server parse and answer = "
      f"**{b['total_kb']:,} KB**. No in-process bound covers the TCP connections: the fd "
      f"limit and the proxy do (docs/operations.md). Not in the bound: the "
      f"{b['closed_websockets']} WebSockets the attack opened and the server closed leave "
      f"~{CLOSED_WEBSOCKET_KB} KB each in a reference cycle until the next full collection "
      f"(docs/decisions/0007): up to {b['closed_websocket_cycles_kb']:,} KB here.\n")
    w("## What the server held at the peak of the attack\n")
    w(f"- open file descriptors: {held['fds_quiet']:.0f} quiet → {held['fds_attack']:.0f} "
      "(sockets of every kind, slowloris included)")
    w(f"- joined youth connections: {held['youth_connections']:.0f} (the neighbour's one "
      "included); pending handshakes: " f"{held['pending_handshakes']:.0f}")
    w(f"- refused at the handshake: {held['refused_too_many_handshakes']:.0f} "
      f"too_many_handshakes, {held['refused_too_many_connections']:.0f} too_many_connections; "
      f"connections closed for a binary packet: {held['binary_refused']:.0f}")
    after = doc["raw"].get("held_after_drain", {})
    w(f"- after {doc['raw'].get('drain_secs')} s of drain: {after.get('fds', 0):.0f} fds, "
      f"{after.get('pending_handshakes') or 0:.0f} pending, "
      f"{after.get('youth_connections') or 0:.0f} youth connections\n")
    w("## What each attack got\n")
    attack = doc["raw"].get("attack", {})
    if "fatal" in attack:
        w(f"**The attacker failed:** {attack['fatal']}\n")
    w("| attack | peak live sockets (client side) | counts |")
    w("|---|---|---|")
    for name, a in attack.get("attacks", {}).items():
        counts = ", ".join(f"{k} {v:,}" for k, v in a["counts"].items())
        extra = f"; max frames before close {a['max_frames_before_close']}" \
            if "max_frames_before_close" in a else ""
        w(f"| {name} | {a['peak_live']} | {counts}{extra} |")
    nice = f"at nice {ATTACKER_NICE}" if doc["sizes"]["nice_attacker"] else "not niced"
    w(f"\nThe attacker ran {attack.get('secs')} s on the generator core, {nice}. "
      f"Server log problems: {doc['server_problems'] or 'none'}.")
    return "\n".join(out) + "\n"


def _log_problems(server: Server) -> list[str]:
    try:
        lines = server.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [ln for ln in lines if "Traceback" in ln or " ERROR " in ln or "Error:" in ln][:20]


def run(out: Path, phase_secs: float, small: bool, name: str, root: Path = REPO_ROOT,
        attacks: tuple[str, ...] = ATTACKS) -> dict[str, Any]:
    size = sizes(phase_secs, small, attacks)
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    server_core, gen_core = cores()
    if gen_core is not None:
        os.sched_setaffinity(0, {int(gen_core)})  # the neighbour, beside the attacker
    overrides = {**NO_RATE_LIMITS, **SHIPPED_BOUNDS, "metrics_port": free_port()}
    load_before: dict[str, Any] = {"loadavg": list(os.getloadavg()), "uptime": runner.uptime()}
    probe: dict[str, Any] = {}
    problems: list[str] = []
    if size.probe:
        prober, _ = start("chat", out / "logs", core=server_core,
                          chat_overrides={**overrides, "metrics_port": free_port()}, root=root)
        try:
            probe = asyncio.run(probe_slowloris(prober, size, out, root))
            problems += _log_problems(prober)
        finally:
            prober.stop()
    server, accounts = start("chat", out / "logs", core=server_core, chat_overrides=overrides,
                             accounts=(1, 3), root=root)
    try:
        raw = asyncio.run(scenario(server, accounts[0], size, out, root))
        problems += _log_problems(server)
    finally:
        server.stop()
    load_after: dict[str, Any] = {"loadavg": list(os.getloadavg()), "uptime": runner.uptime()}
    cpu = os.cpu_count() or 1
    doc: dict[str, Any] = {
        "name": name,
        "command": "python -m loadtests.hostile"
                   + (" --small" if small else "") + f" --phase-secs {phase_secs:g}"
                   + (f" --attacks {','.join(attacks)}" if attacks != ATTACKS else ""),
        "machine": runner.machine(), "load_before": load_before, "load_after": load_after,
        "machine_busy": max(load_before["loadavg"][0], load_after["loadavg"][0]) > cpu,
        "sizes": dataclasses.asdict(size), "settings": overrides,
        "server_problems": problems, "raw": raw, "probe": probe,
    }
    doc["summary"] = summarise(raw, probe, size, overrides)
    doc["targets"] = targets(doc["summary"], raw, overrides)
    (out / "hostile.json").write_text(json.dumps(doc, indent=1))
    (out / "hostile.md").write_text(render(doc))
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.hostile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path,
                        help="results directory (default: loadtests/results/<stamp>-hostile)")
    parser.add_argument("--phase-secs", type=float,
                        help="length of the quiet and of the attack phase (default 30; "
                             "2 with --small)")
    parser.add_argument("--small", action="store_true",
                        help="the CI smoke: tens of sockets, no slowloris probe, 2 s phases "
                             "unless --phase-secs is given")
    parser.add_argument("--name", help="the run's name in the report (default: the directory)")
    parser.add_argument("--attacks", default=",".join(ATTACKS),
                        help="diagnosis: run only these attacks, comma-separated "
                             f"(default: all of {','.join(ATTACKS)})")
    args = parser.parse_args(argv)
    phase = args.phase_secs or (2.0 if args.small else 30.0)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = (args.out or RESULTS / f"{stamp}-hostile").resolve()
    chosen = tuple(a for a in args.attacks.split(",") if a)
    unknown = set(chosen) - set(ATTACKS)
    if unknown or not chosen:
        parser.error(f"--attacks: choose from {','.join(ATTACKS)}")
    doc = run(out, phase, args.small, args.name or out.name, attacks=chosen)
    print(f"hostile: report in {out / 'hostile.md'}", file=sys.stderr)
    for t in doc["targets"]:
        print(f"  {t['verdict']}: {t['target']} — {t['measured']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
