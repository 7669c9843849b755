"""Where the server's memory goes per idle connection.

    .venv/bin/python -m loadtests.memprobe [--n 2000] [--stacks chat,sio,bare]
                                           [--variants default,arena2,malloc]
                                           [--lever-sets "none|lean-queue|..."]
                                           [--browser] [--python OTHER_VENV_PYTHON]
                                           [--no-trace | --trace-only] [--json OUT.json]

For every (stack, variant) this starts one *worker* process that runs the
server in-process — chatserver exactly as ``loadtests.chat_server`` does
(``create_app`` + the GC policy in ``cleanup_ctx``, settings from
``loadtests/load.toml`` plus the relay scenario's overrides), or the stock
python-socketio / bare aiohttp baselines — on a free loopback port, and drives
a small Node client (``loadtests/gen/conn.mjs``: the same wire code as the
swarm, no permessage-deflate offer, Origin = the server's public origin) that
opens N idle connections to ``/youth`` (``/ws`` for bare) and holds them.

Two kinds of worker run per stack:

* ``rss`` — nothing traced, nothing walked (a clean heap, as in a load run):
  VmRSS / RssAnon, glibc ``mallinfo2`` and pymalloc's arena statistics before
  and 1 s after the N connections are up; then, on the same heap, the
  experiments: ``malloc_trim(0)``, a full cyclic collection (chatserver:
  unfreeze, collect, freeze), ``malloc_trim(0)`` again; then the connections
  close and the RSS that stays is reported.
* ``trace`` — ``tracemalloc`` (12 frames) started after start-up: the
  snapshot difference per connection by file:line (top 30), by module
  (top 15) and by *owner* (the innermost frame in chatserver / socket.io /
  engine.io / aiohttp; asyncio-only stacks are the transport and loop), a
  per-type object histogram difference (``gc.get_objects()`` after
  unfreezing, plus the untracked objects they refer to: str, bytes, int,
  float), the owner of each new object, the live tasks per connection by
  coroutine, and the deep sizes of the per-connection structures
  (environ, engine.io socket, socket.io sid room, chatserver ConnState).

Variants are environment settings of the worker: ``default``, ``arena2``
(MALLOC_ARENA_MAX=2), ``malloc`` (PYTHONMALLOC=malloc); variants other than
default get an ``rss`` run only.

Lever sets (``--lever-sets``, '|'-separated, each '+'-joined) change the
server *in the worker process only* to measure what a change would save
(see ``apply_levers``); ``--browser`` sends a desktop browser's upgrade
headers and permessage-deflate offer; ``--python`` runs the workers on another
interpreter (a venv with the same packages) to compare Python versions.

An rss run is ~10 s per worker at N=2 000, a trace run ~60 s and everything talks to
127.0.0.1 only; every server and client it starts is stopped before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CONN_MJS = HERE / "gen" / "conn.mjs"
PYTHON = sys.executable
TRACE_FRAMES = 12

VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "arena2": {"MALLOC_ARENA_MAX": "2"},
    "malloc": {"PYTHONMALLOC": "malloc"},
    "arena2+malloc": {"MALLOC_ARENA_MAX": "2", "PYTHONMALLOC": "malloc"},
}

# What a desktop Chrome adds to a WebSocket upgrade besides what `ws` sends
# (Host, Connection, Upgrade, Sec-WebSocket-Key/Version, and with --deflate
# Sec-WebSocket-Extensions).
BROWSER_HEADERS = {
    "Pragma": "no-cache",
    "Cache-Control": "no-cache",
    "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                  "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Accept-Encoding": "gzip, deflate, br, zstd",
    "Accept-Language": "sv-SE,sv;q=0.9,en-US;q=0.8,en;q=0.7",
}

# The Node side: open/close N connections on command (stdin), report on stdout.
CLIENT_JS = r"""
import readline from 'node:readline';
const { SioConn, BareConn } = await import(process.env.MEMPROBE_CONN_MJS);
const [base, ns, origin, stack, deflate] = process.argv.slice(2);
const stats = { framesIn: 0, framesOut: 0, bytesIn: 0, wsErrors: 0 };
const extra = JSON.parse(process.env.MEMPROBE_HEADERS || '{}');
let conns = [];
async function open(n) {
  const Cls = stack === 'bare' ? BareConn : SioConn;
  let next = 0, ok = 0, fail = 0, lastErr = '';
  const worker = async () => {
    while (next < n) {
      next += 1;
      const c = new Cls(base, ns, { ...extra, Origin: origin }, stats, deflate === '1');
      const err = await c.open();
      if (err) { fail += 1; lastErr = err; } else { ok += 1; conns.push(c); }
    }
  };
  await Promise.all(Array.from({ length: Math.min(100, n) }, worker));
  return `opened ${ok} ${fail} ${JSON.stringify(lastErr)}`;
}
async function closeAll() {
  for (const c of conns) c.close();
  const until = Date.now() + 15000;
  while (conns.some((c) => !c.closed) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const left = conns.filter((c) => !c.closed).length;
  for (const c of conns) if (!c.closed) c.drop();
  conns = [];
  return `closed ${left}`;
}
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  const [cmd, arg] = line.trim().split(' ');
  if (cmd === 'open') process.stdout.write((await open(Number(arg))) + '\n');
  else if (cmd === 'close') process.stdout.write((await closeAll()) + '\n');
  else if (cmd === 'exit') process.exit(0);
});
rl.on('close', () => process.exit(0));
"""


# ---------------------------------------------------------------- process-level numbers

class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


LIBC = _libc()
if LIBC is not None and hasattr(LIBC, "mallinfo2"):
    LIBC.mallinfo2.restype = _MallInfo2


def proc_status() -> dict[str, int]:
    """VmRSS, RssAnon, RssFile in KiB."""
    out: dict[str, int] = {}
    with open("/proc/self/status", "rb") as fh:
        for line in fh:
            if line.startswith((b"VmRSS", b"RssAnon", b"RssFile", b"VmData")):
                key, value = line.split(b":", 1)
                out[key.decode()] = int(value.split()[0])
    return out


def mallinfo() -> dict[str, int]:
    """glibc heap (all arenas): bytes in use, free-but-held, mmapped chunks."""
    if LIBC is None or not hasattr(LIBC, "mallinfo2"):
        return {}
    mi = LIBC.mallinfo2()
    return {"heap_total": mi.arena, "in_use": mi.uordblks, "free_held": mi.fordblks,
            "mmapped": mi.hblkhd, "trimmable_top": mi.keepcost}


def malloc_trim() -> None:
    if LIBC is not None:
        LIBC.malloc_trim(0)


_PYMALLOC_KEYS = {
    "# arenas allocated current": "arenas",
    "# bytes in allocated blocks": "allocated",
    "# bytes in available blocks": "available",
    "# bytes lost to pool headers": "pool_headers",
    "# bytes lost to quantization": "quantization",
    "# bytes lost to arena alignment": "arena_alignment",
}


def pymalloc_stats() -> dict[str, int]:
    """sys._debugmallocstats() (C stderr) parsed: pymalloc's own bookkeeping."""
    with tempfile.TemporaryFile() as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode(errors="replace")
    out: dict[str, int] = {}
    for line in text.splitlines():
        for prefix, key in _PYMALLOC_KEYS.items():
            if line.startswith(prefix):
                out[key] = int(line.rsplit("=", 1)[1].strip().replace(",", ""))
    return out


def mem_point() -> dict[str, Any]:
    # RSS first: the other readings allocate a little.
    point: dict[str, Any] = {"status": proc_status()}
    point["malloc"] = mallinfo()
    point["pymalloc"] = pymalloc_stats()
    point["blocks"] = sys.getallocatedblocks()
    return point


# ---------------------------------------------------------------- owners

OWNERS = (
    ("/chatserver/", "chatserver"),
    ("/socketio/", "socket.io"),
    ("/bidict/", "socket.io"),
    ("/engineio/", "engine.io"),
    ("/aiohttp/", "aiohttp"),
    ("/multidict/", "aiohttp"),
    ("/yarl/", "aiohttp"),
    ("/propcache/", "aiohttp"),
    ("/frozenlist/", "aiohttp"),
    ("/aiosignal/", "aiohttp"),
    ("/loadtests/baselines/", "baseline app"),
)


def owner_of(filenames: Iterable[str]) -> str:
    """``filenames`` most recent first: the innermost library frame owns it."""
    seen_asyncio = False
    for name in filenames:
        for needle, owner in OWNERS:
            if needle in name:
                return owner
        if "/asyncio/" in name or name.endswith("memprobe.py"):
            seen_asyncio = True  # memprobe.py only runs the loop
    return "asyncio (transport/loop)" if seen_asyncio else "other"


def tb_owner(tb: tracemalloc.Traceback | None) -> str:
    if tb is None:
        return "untraced"
    # Traceback is ordered oldest -> most recent (Python >= 3.7)
    return owner_of(f.filename for f in reversed(tb))


# ---------------------------------------------------------------- object census

def all_objects() -> list[Any]:
    """Every gc-tracked object (frozen ones too) plus the untracked objects
    they refer to directly (str, bytes, int, float, tuples untracked...)."""
    frozen = gc.get_freeze_count()
    if frozen:
        gc.unfreeze()
    try:
        tracked = gc.get_objects()
    finally:
        if frozen:
            gc.freeze()
    seen = {id(o) for o in tracked}
    extra: list[Any] = []
    for obj in tracked:
        for ref in gc.get_referents(obj):
            if id(ref) not in seen and not gc.is_tracked(ref):
                seen.add(id(ref))
                extra.append(ref)
    tracked.extend(extra)
    return tracked


def type_name(obj: Any) -> str:
    t = type(obj)
    mod = t.__module__
    return t.__qualname__ if mod in ("builtins", None) else f"{mod}.{t.__qualname__}"


def census(objs: list[Any]) -> dict[str, list[int]]:
    """type -> [count, shallow bytes]."""
    out: dict[str, list[int]] = {}
    for o in objs:
        size = sys.getsizeof(o, 0)
        row = out.setdefault(type_name(o), [0, 0])
        row[0] += 1
        row[1] += size
    return out


def deep_size(root: Any, stop: set[int] | None = None, limit: int = 5_000) -> int:
    """Bytes reachable from ``root`` that are not reachable from ``stop`` ids
    (shared singletons, modules, classes, functions are never counted)."""
    stop = stop or set()
    seen: set[int] = set()
    todo = [root]
    total = 0
    skip = (type, type(sys), type(deep_size), type(len))
    while todo and len(seen) < limit:
        o = todo.pop()
        if id(o) in seen or id(o) in stop or isinstance(o, skip):
            continue
        seen.add(id(o))
        total += sys.getsizeof(o, 0)
        todo.extend(gc.get_referents(o))
    return total


# ---------------------------------------------------------------- the server under test

def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Target:
    """One server stack in this process."""

    def __init__(self, stack: str, port: int) -> None:
        from aiohttp import web

        self.stack = stack
        self.port = port
        self.origin = f"http://localhost:{port}"
        self.ns = "/ws" if stack == "bare" else "/youth"
        self.data_dir: Path | None = None
        self.ctx: Any = None
        if stack == "chat":
            from chatserver import gc_policy, logs
            from chatserver.app import create_app
            from chatserver.settings import load_settings
            from chatserver.transport import http as chat_http
            from loadtests.servers import NO_RATE_LIMITS, chat_env

            self.data_dir = Path(tempfile.mkdtemp(prefix="memprobe-chat-"))
            os.environ.update(chat_env(self.data_dir, port, NO_RATE_LIMITS))
            settings = load_settings()
            logs.configure(settings.log_level)
            self.origin = settings.public_origin
            app = create_app(settings)

            async def gc_ctx(_: web.Application) -> Any:  # as loadtests/chat_server.py
                task = gc_policy.install(settings)
                yield
                if task is not None:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)

            app.cleanup_ctx.append(gc_ctx)
            self.ctx = app[chat_http.CONTEXT]
        elif stack == "sio":
            from loadtests.baselines import stock_socketio
            app = stock_socketio.make_app()
        elif stack == "bare":
            from loadtests.baselines import bare_aiohttp
            app = bare_aiohttp.make_app()
        else:
            raise SystemExit(f"unknown stack {stack!r}")
        self.app = app
        self.runner: Any = None

    @property
    def eio(self) -> Any:
        for route in self.app.router.routes():
            handler = getattr(route.handler, "__self__", None)
            if handler is not None and hasattr(handler, "sockets"):
                return handler
        return None

    @property
    def sio(self) -> Any:
        eio = self.eio
        if eio is None:
            return None
        for h in eio.handlers.values():
            owner = getattr(h, "__self__", None)
            if owner is not None and hasattr(owner, "manager"):
                return owner
        return None

    async def start(self) -> None:
        from aiohttp import web
        # as web.run_app(..., access_log=None, backlog=4096)
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port, backlog=4096)
        await site.start()

    def connections(self) -> int:
        server = self.runner.server if self.runner else None
        return len(getattr(server, "connections", ()) or ())

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)


class Client:
    """The Node process holding the connections."""

    def __init__(self, proc: asyncio.subprocess.Process, script_dir: Path) -> None:
        self.proc = proc
        self.script_dir = script_dir

    @classmethod
    async def start(cls, target: Target, deflate: bool, browser: bool = False) -> Client:
        script_dir = Path(tempfile.mkdtemp(prefix="memprobe-js-"))
        script = script_dir / "client.mjs"
        script.write_text(CLIENT_JS)
        env = {**os.environ, "MEMPROBE_CONN_MJS": CONN_MJS.as_uri(),
               "MEMPROBE_HEADERS": json.dumps(BROWSER_HEADERS if browser else {})}
        deflate = deflate or browser
        core = os.environ.get("MEMPROBE_CLIENT_CORE")
        cmd = ["node", str(script), f"http://127.0.0.1:{target.port}", target.ns,
               target.origin, target.stack, "1" if deflate else "0"]
        if core and shutil.which("taskset"):
            cmd = ["taskset", "-c", core, *cmd]
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env)
        return cls(proc, script_dir)

    async def command(self, line: str, wait_secs: float = 120.0) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()
        reply = await asyncio.wait_for(self.proc.stdout.readline(), wait_secs)
        if not reply:
            raise RuntimeError(f"client exited during {line!r}")
        return reply.decode().strip()

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.command("close", wait_secs=30)
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        shutil.rmtree(self.script_dir, ignore_errors=True)


async def _wait_connections(target: Target, want: int, wait_secs: float = 20.0) -> int:
    deadline = time.monotonic() + wait_secs
    while time.monotonic() < deadline:
        if target.connections() == want:
            break
        await asyncio.sleep(0.1)
    return target.connections()


# ---------------------------------------------------------------- trace-run analysis

def _frames_key(filename: str) -> str:
    for marker in ("site-packages/", "/main/", "/lib/python3"):
        i = filename.find(marker)
        if i >= 0:
            return filename[i + len(marker):].lstrip("/")
    return filename


RawTb = tuple[tuple[str, int], ...]  # most recent frame first


def _snapshot() -> dict[RawTb, list[int]]:
    """Live traced blocks grouped by traceback: {traceback: [bytes, blocks]}.

    Grouped in one pass over the raw traces (``Snapshot.traces._traces``):
    the public ``filter_traces``/``compare_to`` walk 600 000 traces in Python
    several times over, which took minutes at N=2 000."""
    snap = tracemalloc.take_snapshot()
    raw = getattr(snap.traces, "_traces", None)
    groups: dict[RawTb, list[int]] = {}
    if raw is None:  # another Python: the public (slow) way
        for stat in snap.statistics("traceback"):
            tb = tuple((f.filename, f.lineno) for f in reversed(stat.traceback))
            groups[tb] = [stat.size, stat.count]
        return groups
    for trace in raw:
        size, tb = trace[1], trace[2]
        row = groups.get(tb)
        if row is None:
            groups[tb] = [size, 1]
        else:
            row[0] += size
            row[1] += 1
    return groups


def _where(frame: tuple[str, int]) -> str:
    return f"{_frames_key(frame[0])}:{frame[1]}"


def trace_report(before: dict[RawTb, list[int]], after: dict[RawTb, list[int]],
                 n: int) -> dict[str, Any]:
    diff: dict[RawTb, list[int]] = {}
    for tb in set(before) | set(after):
        a, b = after.get(tb, [0, 0]), before.get(tb, [0, 0])
        if a != b:
            diff[tb] = [a[0] - b[0], a[1] - b[1]]
    out: dict[str, Any] = {}
    out["total_bytes_per_conn"] = round(sum(v[0] for v in diff.values()) / n, 1)
    out["total_blocks_per_conn"] = round(sum(v[1] for v in diff.values()) / n, 2)
    by_line: dict[str, list[int]] = {}
    by_file: dict[str, list[int]] = {}
    owners: dict[str, list[int]] = {}
    owner_lines: dict[str, Counter[str]] = {}
    for tb, (size, count) in diff.items():
        if not tb:
            continue
        for key, group in ((_where(tb[0]), by_line), (_frames_key(tb[0][0]), by_file)):
            row = group.setdefault(key, [0, 0])
            row[0] += size
            row[1] += count
        owner = owner_of(f[0] for f in tb)
        row = owners.setdefault(owner, [0, 0])
        row[0] += size
        row[1] += count
        # attribute to the innermost frame of the owning library
        where = next((_where(f) for f in tb if owner_of([f[0]]) == owner), _where(tb[0]))
        owner_lines.setdefault(owner, Counter())[where] += size

    def table(t: dict[str, list[int]], k: int, label: str) -> list[dict[str, Any]]:
        return [{label: key, "bytes": round(v[0] / n, 1), "blocks": round(v[1] / n, 2)}
                for key, v in sorted(t.items(), key=lambda kv: -kv[1][0])[:k]]

    out["by_line"] = table(by_line, 30, "where")
    out["by_module"] = table(by_file, 15, "module")
    out["top_tracebacks"] = [
        {"bytes": round(v[0] / n, 1), "blocks": round(v[1] / n, 2),
         "stack": " < ".join(_where(f) for f in tb[:6])}
        for tb, v in sorted(diff.items(), key=lambda kv: -kv[1][0])[:20]]
    out["by_owner"] = {k: {"bytes": round(v[0] / n, 1), "blocks": round(v[1] / n, 2),
                           "top": [(w, round(b / n, 1))
                                   for w, b in owner_lines[k].most_common(8)]}
                       for k, v in sorted(owners.items(), key=lambda kv: -kv[1][0])}
    return out


def census_report(before: dict[str, list[int]], after: dict[str, list[int]],
                  new_owned: Counter[tuple[str, str]], n: int) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for t in set(before) | set(after):
        b, a = before.get(t, [0, 0]), after.get(t, [0, 0])
        dc, db = a[0] - b[0], a[1] - b[1]
        if abs(dc) >= n * 0.05:
            rows.append({"type": t, "count": round(dc / n, 2), "bytes": round(db / n, 1)})
    rows.sort(key=lambda r: -r["bytes"])
    owned = [{"type": t, "owner": o, "count": round(c / n, 2)}
             for (t, o), c in new_owned.most_common() if c >= n * 0.5]
    return {"types": rows[:40],
            "sum_bytes_per_conn": round(sum(r["bytes"] for r in rows), 1),
            "sum_objects_per_conn": round(sum(r["count"] for r in rows), 1),
            "new_objects_by_owner": owned[:60]}


def task_report(n: int) -> dict[str, Any]:
    names: Counter[str] = Counter()
    coro_bytes: Counter[str] = Counter()
    for t in asyncio.all_tasks():
        coro = t.get_coro()
        name = getattr(coro, "__qualname__", type(coro).__name__)
        # the innermost awaited coroutine: where it waits
        chain = [name]
        c: Any = coro
        while True:
            c = getattr(c, "cr_await", None)
            if c is None or not hasattr(c, "cr_await"):  # never cr_frame: it makes frame objects
                break
            chain.append(getattr(c, "__qualname__", "?"))
        key = " > ".join(chain)
        names[key] += 1
        c = coro
        size = sys.getsizeof(t)
        while c is not None and hasattr(c, "cr_await"):
            size += sys.getsizeof(c)
            c = getattr(c, "cr_await", None)
        coro_bytes[key] += size
    return {"tasks_per_conn": round(sum(names.values()) / n, 2),
            "by_coroutine": [{"chain": k, "per_conn": round(v / n, 2),
                              "bytes_task_plus_coros": round(coro_bytes[k] / v)}
                             for k, v in names.most_common(12)]}


def structures_report(target: Target) -> dict[str, Any]:
    """Deep sizes of one connection's structures (averaged over 20)."""
    eio, sio = target.eio, target.sio
    out: dict[str, Any] = {}
    if eio is None:
        return out
    # Things shared by every connection must not be counted in one: the
    # servers, the app, the loop, modules, classes.
    shared: set[int] = set()
    for o in (eio, sio, target.app, asyncio.get_running_loop(), target.ctx,
              getattr(sio, "manager", None), eio.logger, getattr(sio, "logger", None),
              sys.stderr, target.runner):
        if o is not None:
            shared.add(id(o))
    socks = list(eio.sockets.values())[:20]
    if not socks:
        return out

    def avg(fn: Any) -> float:
        vals = [float(fn(s)) for s in socks]
        return round(sum(vals) / len(vals), 1)

    env_of = (lambda s: sio.environ.get(s.sid)) if sio is not None else (lambda s: None)
    out["environ_entries"] = avg(lambda s: len(env_of(s) or {}))
    out["environ_dict_shallow"] = avg(lambda s: sys.getsizeof(env_of(s)))

    def environ_own(s: Any) -> int:
        env = env_of(s)
        if env is None:
            return 0
        req = env.get("aiohttp.request")
        stop = shared | {id(req), id(env.get("wsgi.input")), id(env.get("wsgi.errors"))}
        # keys built per request ('HTTP_...') and the dict; header values are
        # shared with the request's headers, so only count the dict and keys
        total = sys.getsizeof(env)
        for k in env:
            if sys.intern(k) is not k:
                total += sys.getsizeof(k)
        for v in env.values():
            if id(v) not in stop and isinstance(v, str) and not _shared_with_request(v, req):
                total += sys.getsizeof(v)
        return total

    out["environ_own_bytes"] = avg(environ_own)

    out["engineio_socket_shallow+dict"] = avg(
        lambda s: sys.getsizeof(s) + sys.getsizeof(s.__dict__))
    out["engineio_queue_deep"] = avg(lambda s: deep_size(s.queue, shared | {id(s)}))
    if sio is not None:
        rooms = sio.manager.rooms.get(target.ns, {})

        def sid_room(s: Any) -> int:
            sid = rooms.get(None, {}).inverse.get(s.sid) if None in rooms else None
            room = rooms.get(sid)
            return deep_size(room, shared) if room is not None else 0

        out["socketio_sid_room_bidict_deep"] = avg(sid_room)
    if target.ctx is not None and target.ctx.conns:
        states = list(target.ctx.conns.values())[:20]
        out["chatserver_connstate_deep"] = round(
            sum(deep_size(st, shared) for st in states) / len(states), 1)
        out["chatserver_buckets_deep"] = round(
            sum(deep_size((st.send_bucket, st.other_bucket), shared) for st in states)
            / len(states), 1)
    return out


def _shared_with_request(value: str, req: Any) -> bool:
    if req is None:
        return False
    return any(value is v for v in req.headers.values())


# ---------------------------------------------------------------- levers (in this process only)
#
# Each lever changes the server *in this process*, through the objects a
# deployment could change without patching a library file, to measure what a
# change would save. None of them is installed by chatserver, except
# lean-queue: chatserver's own PacketQueue, on by default
# (engineio_lean_queue); stock-queue takes it away again.

# (one-middleware, sync-middleware, lean-clone and lazy-buckets measured
# changes that chatserver has made since; their figures are in
# docs/performance.md, and the levers went when the code they rewrote did.)
LEVERS = ("lean-queue", "stock-queue", "ping-timer", "environ-trim", "ws-no-sec-headers")


def apply_levers(target: Target, levers: list[str]) -> None:
    from aiohttp import web

    from chatserver.transport.packet_queue import use_packet_queues

    eio, sio = target.eio, target.sio
    for lever in levers:
        if lever not in LEVERS:
            raise SystemExit(f"unknown lever {lever!r}; one of {LEVERS}")
    if "lean-queue" in levers and "stock-queue" in levers:
        raise SystemExit("lean-queue and stock-queue contradict each other")
    if "lean-queue" in levers and eio is not None:
        # engine.io makes each socket's queue with server.create_queue()
        use_packet_queues(eio)
    if "stock-queue" in levers and eio is not None:
        eio.create_queue = lambda *args, **kwargs: asyncio.Queue(*args, **kwargs)
    if "ping-timer" in levers and eio is not None:
        # engine.io runs each ping wait as a Task sleeping ping_interval; a
        # TimerHandle does the same wait without task, coroutines and future.
        from engineio import packet as eio_packet
        from engineio.async_socket import AsyncSocket

        orig_start = eio.start_background_task

        def ping_now(sock: Any) -> None:
            if not sock.closing and not sock.closed:
                sock.last_ping = time.time()
                task = asyncio.ensure_future(sock.send(eio_packet.Packet(eio_packet.PING)))
                _BACKGROUND.add(task)
                task.add_done_callback(_BACKGROUND.discard)

        def start_background_task(target_fn: Any, *args: Any, **kwargs: Any) -> Any:
            if getattr(target_fn, "__func__", None) is AsyncSocket._send_ping:
                return asyncio.get_running_loop().call_later(
                    eio.ping_interval, ping_now, target_fn.__self__)
            return orig_start(target_fn, *args, **kwargs)

        eio.start_background_task = start_background_task
    if "environ-trim" in levers and sio is not None:
        # after a /youth connect, keep only what a later handler could read;
        # a dict never shrinks on deletion, so clear it and put those back
        keep = ("HTTP_ORIGIN", "aiohttp.request")

        def trim(environ: dict[str, Any]) -> None:
            kept = {k: environ[k] for k in keep if k in environ}
            environ.clear()
            environ.update(kept)

        ns_handler = sio.namespace_handlers.get(target.ns)
        if ns_handler is not None:
            orig_connect = ns_handler.on_connect

            async def on_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> Any:
                out = await orig_connect(sid, environ, auth)
                trim(environ)
                return out

            ns_handler.on_connect = on_connect
        elif "connect" in sio.handlers.get(target.ns, {}):
            orig_fn = sio.handlers[target.ns]["connect"]

            async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> Any:
                out = await orig_fn(sid, environ, auth)
                trim(environ)
                return out

            sio.handlers[target.ns]["connect"] = connect
    if "ws-no-sec-headers" in levers:
        hooks = target.app.on_response_prepare
        for i, hook in enumerate(list(hooks)):
            if getattr(hook, "__name__", "") == "add_security_headers":
                def skip_ws(request: web.Request, response: web.StreamResponse,
                            hook: Any = hook) -> Any:
                    if isinstance(response, web.WebSocketResponse):
                        return _noop()
                    return hook(request, response)
                hooks[i] = skip_ws


_BACKGROUND: set[asyncio.Task[Any]] = set()

async def _noop() -> None:
    return None


# ---------------------------------------------------------------- the worker

_T0 = time.monotonic()


def note(what: str) -> None:
    print(f"memprobe worker {time.monotonic() - _T0:6.1f}s {what}", file=sys.stderr, flush=True)


async def worker(args: argparse.Namespace) -> dict[str, Any]:
    n, kind = args.n, args.kind
    target = Target(args.stack, _free_port())
    levers = [x for x in args.levers.split("+") if x and x != "none"]
    apply_levers(target, levers)
    await target.start()
    client = await Client.start(target, args.deflate, args.browser)
    res: dict[str, Any] = {"stack": args.stack, "kind": kind, "n": n,
                           "variant": args.variant, "env": VARIANTS[args.variant],
                           "levers": "+".join(levers) or "none",
                           "client_kind": "browser-like" if args.browser else
                           ("deflate" if args.deflate else "minimal"),
                           "python": sys.version.split()[0]}
    try:
        # Warm-up: every code path of a connection has run once (lazy imports,
        # caches, the first engine.io service task), then everything is closed.
        warm = await client.command(f"open {args.warmup}")
        await client.command("close")
        await _wait_connections(target, 0)
        await asyncio.sleep(args.settle)
        if kind == "trace":
            # the census of what exists before is taken untraced: only the
            # connections' allocations are traced and snapshotted
            objs0 = all_objects()
            census0 = census(objs0)
            del objs0
            note("census 0")
            tracemalloc.start(TRACE_FRAMES)
            await asyncio.sleep(0.2)
        base_conns = target.connections()
        before = mem_point()
        note("baseline measured")
        if kind == "trace":
            snap0 = _snapshot()
            note("snapshot 0")
        t0 = time.monotonic()
        opened = await client.command(f"open {n}")
        res["open_secs"] = round(time.monotonic() - t0, 1)
        res["client"] = {"warmup": warm, "open": opened}
        await asyncio.sleep(args.settle)  # as the swarm: RSS 1 s after the last connect
        res["server_connections"] = target.connections() - base_conns
        conns = res["server_connections"] or n
        after = mem_point()
        note(f"{res['server_connections']} connections measured")
        res["points"] = {"before": before, "after": after}
        if kind == "rss":
            malloc_trim()
            res["points"]["after_trim"] = mem_point()
            frozen = gc.get_freeze_count()
            if frozen:
                gc.unfreeze()
            res["gc_collected"] = gc.collect()
            res["gc_frozen_before_collect"] = frozen
            if frozen:
                gc.freeze()
            res["points"]["after_gc"] = mem_point()
            malloc_trim()
            res["points"]["after_gc_trim"] = mem_point()
        else:
            snap1 = _snapshot()
            note("snapshot 1")
            res["tracemalloc"] = trace_report(snap0, snap1, conns)
            note("trace report")
            del snap0, snap1
            # Owners of the new gc-tracked objects: an object with a traceback
            # was allocated after tracing began. Every 4th object, as a
            # sample: building tracebacks is slow. Then tracing stops before
            # the (allocation-heavy) census.
            new_owned: Counter[tuple[str, str]] = Counter()
            frozen = gc.get_freeze_count()
            if frozen:
                gc.unfreeze()
            tracked = gc.get_objects()
            if frozen:
                gc.freeze()
            for o in tracked[::8]:
                tb = tracemalloc.get_object_traceback(o)
                if tb is not None:
                    new_owned[(type_name(o), tb_owner(tb))] += 8
            del tracked
            note("owners")
            res["tasks"] = task_report(conns)
            res["structures"] = structures_report(target)
            note("tasks + structures")
            tracemalloc.stop()
            objs1 = all_objects()
            census1 = census(objs1)
            note("census 1")
            del objs1
            res["objects"] = census_report(census0, census1, new_owned, conns)
        await client.command("close")
        await _wait_connections(target, base_conns)
        await asyncio.sleep(args.settle)
        res["points"]["closed"] = mem_point()
        if kind == "rss":
            malloc_trim()
            res["points"]["closed_trim"] = mem_point()
    finally:
        await client.stop()
        await target.stop()
    return res


# ---------------------------------------------------------------- orchestration + report

def per_conn(res: dict[str, Any], a: str, b: str, key: str = "VmRSS") -> float:
    p = res["points"]
    n = res.get("server_connections") or res["n"]
    return round(float(p[b]["status"][key] - p[a]["status"][key]) / float(n), 2)


def run_worker(stack: str, kind: str, variant: str, levers: str,
               args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent), **VARIANTS[variant]}
    cmd = [args.python, "-m", "loadtests.memprobe", "--worker", "--stack", stack,
           "--kind", kind, "--variant", variant, "--levers", levers, "--n", str(args.n),
           "--warmup", str(args.warmup), "--settle", str(args.settle)]
    if args.deflate:
        cmd.append("--deflate")
    if args.browser:
        cmd.append("--browser")
    if args.server_core and shutil.which("taskset"):
        cmd = ["taskset", "-c", args.server_core, *cmd]
        env["MEMPROBE_CLIENT_CORE"] = args.client_core or ""
    print(f"memprobe: {stack} {kind} {variant} {levers} ...", file=sys.stderr, flush=True)
    done = subprocess.run(cmd, cwd=HERE.parent, env=env, capture_output=True, text=True,
                          timeout=600)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"stack": stack, "kind": kind, "variant": variant, "levers": levers,
                "fatal": done.stderr.strip().splitlines()[-5:]}
    return dict(json.loads(lines[-1]))


def _kb(x: float) -> str:
    return f"{x:,.2f}"


def render(results: list[dict[str, Any]]) -> str:
    out: list[str] = []
    w = out.append
    rss_runs = [r for r in results if r.get("kind") == "rss" and "fatal" not in r]
    if rss_runs:
        w("## RSS per idle connection (KiB / connection)\n")
        w("| stack | python | variant | levers | client | conns | RSS | RssAnon | +trim | "
          "+gc.collect | +trim | "
          "pymalloc alloc'd | pymalloc arenas | malloc in_use | malloc free_held | "
          "after close | after close+trim | gc collected |")
        w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rss_runs:
            p, n = r["points"], r.get("server_connections") or r["n"]

            def d(a: str, b: str, group: str, key: str, p: Any = p, n: int = n) -> str:
                try:
                    return _kb((p[b][group][key] - p[a][group][key]) / n / 1024)
                except KeyError:
                    return "-"
            w(f"| {r['stack']} | {r['python']} | {r['variant']} | {r.get('levers', 'none')} | "
              f"{r.get('client_kind', 'minimal')} | {n} | "
              f"{_kb(per_conn(r, 'before', 'after'))} | "
              f"{_kb(per_conn(r, 'before', 'after', 'RssAnon'))} | "
              f"{_kb(per_conn(r, 'before', 'after_trim'))} | "
              f"{_kb(per_conn(r, 'before', 'after_gc'))} | "
              f"{_kb(per_conn(r, 'before', 'after_gc_trim'))} | "
              f"{d('before', 'after', 'pymalloc', 'allocated')} | "
              f"{_kb(((p['after']['pymalloc'].get('arenas', 0) - p['before']['pymalloc'].get('arenas', 0)) * 1024) / n)} | "  # noqa: E501
              f"{d('before', 'after', 'malloc', 'in_use')} | "
              f"{d('before', 'after', 'malloc', 'free_held')} | "
              f"{_kb(per_conn(r, 'before', 'closed'))} | "
              f"{_kb(per_conn(r, 'before', 'closed_trim'))} | {r.get('gc_collected')} |")
        w("")
        w("(pymalloc arenas are 1 MiB each (KiB/conn column is arenas×1024/n); "
          "'malloc' is glibc mallinfo2 over all arenas; "
          "'+gc.collect' unfreezes, collects and refreezes for chatserver)\n")
    for r in results:
        if "fatal" in r:
            w(f"**{r['stack']} {r['kind']} {r['variant']} {r.get('levers')} failed:** "
              f"{r['fatal']}\n")
            continue
        if r.get("kind") != "trace":
            continue
        n = r.get("server_connections") or r["n"]
        tm = r["tracemalloc"]
        w(f"## {r['stack']}: tracemalloc, per connection (n={n})\n")
        w(f"RSS delta in this (traced) run: {_kb(per_conn(r, 'before', 'after'))} KiB; "
          f"tracemalloc net: **{tm['total_bytes_per_conn']:,.0f} B** in "
          f"{tm['total_blocks_per_conn']} blocks\n")
        w("| owner | bytes | blocks | top lines (bytes) |")
        w("|---|---|---|---|")
        for owner, row in tm["by_owner"].items():
            tops = "; ".join(f"{where} {b:,.0f}" for where, b in row["top"][:5])
            w(f"| {owner} | {row['bytes']:,.0f} | {row['blocks']} | {tops} |")
        w("\n### top 20 allocation stacks (innermost first)\n")
        w("| bytes | blocks | stack |")
        w("|---|---|---|")
        for row in tm["top_tracebacks"]:
            w(f"| {row['bytes']:,.0f} | {row['blocks']} | {row['stack']} |")
        w("\n### top 30 lines\n")
        w("| file:line | bytes | blocks |")
        w("|---|---|---|")
        for row in tm["by_line"]:
            w(f"| {row['where']} | {row['bytes']:,.0f} | {row['blocks']} |")
        w("\n### top 15 modules\n")
        w("| module | bytes | blocks |")
        w("|---|---|---|")
        for row in tm["by_module"]:
            w(f"| {row['module']} | {row['bytes']:,.0f} | {row['blocks']} |")
        ob = r["objects"]
        w(f"\n### objects per connection (net; {ob['sum_objects_per_conn']} objects, "
          f"{ob['sum_bytes_per_conn']:,.0f} B shallow)\n")
        w("| type | count | bytes (shallow) |")
        w("|---|---|---|")
        for row in ob["types"]:
            w(f"| {row['type']} | {row['count']} | {row['bytes']:,.0f} |")
        w("\n### new objects by type and owner (per connection, ≥ 0.5)\n")
        w("| type | owner | count |")
        w("|---|---|---|")
        for row in ob["new_objects_by_owner"]:
            w(f"| {row['type']} | {row['owner']} | {row['count']} |")
        tk = r["tasks"]
        w(f"\n### live tasks: {tk['tasks_per_conn']} per connection\n")
        w("| coroutine chain | per conn | bytes (task + coroutine frames) |")
        w("|---|---|---|")
        for row in tk["by_coroutine"]:
            w(f"| {row['chain']} | {row['per_conn']} | {row['bytes_task_plus_coros']:,} |")
        w("\n### structures (deep bytes, one connection, mean of 20)\n")
        for k, v in r["structures"].items():
            w(f"- {k}: {v:,}")
        w("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.memprobe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--stacks", default="chat,sio")
    parser.add_argument("--variants", default="default")
    parser.add_argument("--no-trace", action="store_true", help="rss runs only")
    parser.add_argument("--trace-only", action="store_true", help="trace runs only")
    parser.add_argument("--deflate", action="store_true",
                        help="offer permessage-deflate as a browser does")
    parser.add_argument("--browser", action="store_true",
                        help="send a desktop browser's upgrade headers (implies --deflate)")
    parser.add_argument("--lever-sets", default="none",
                        help="'|'-separated runs, each a '+'-joined list of levers from "
                             + ", ".join(LEVERS) + " (rss runs; 'none' = as shipped)")
    parser.add_argument("--python", default=PYTHON,
                        help="interpreter for the workers (another venv with the same deps)")
    parser.add_argument("--server-core", default="", help="taskset core for the server")
    parser.add_argument("--client-core", default="", help="taskset core for the client")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    # worker mode
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stack", default="chat", help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="rss", help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="default", help=argparse.SUPPRESS)
    parser.add_argument("--levers", default="none", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(asyncio.run(worker(args))))
        return 0
    if shutil.which("node") is None:
        raise SystemExit("memprobe: node is required")
    results: list[dict[str, Any]] = []
    for stack in args.stacks.split(","):
        for variant in args.variants.split(","):
            for levers in args.lever_sets.split("|"):
                plain = variant == "default" and levers == "none"
                kinds = ["rss", "trace"] if plain and not args.no_trace else ["rss"]
                if args.trace_only:
                    kinds = ["trace"]
                for kind in kinds:
                    results.append(run_worker(stack, kind, variant, levers, args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(render(results))
    return 0 if all("fatal" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
