"""The youth page on a cheap phone over slow 3G: how long until the safety
page is readable, the quick exit works, and the chat is ready.

Real Chromium (Playwright, driven through the DevTools protocol) against a
real ``chatserver serve``, with a counsellor on duty (the reference client)
so that "start" reaches the queue. Each run is a fresh browser context (an
empty cache, like a first visit) with:

- ``Network.emulateNetworkConditions``: latency 2000 ms, 50 000 bytes/s down
  and up. Chromium adds the latency once per request, between sending it and
  the response's headers (a 2 s round trip per request); it does not add the
  extra round trips a real first connection costs (DNS, TCP, TLS);
- ``Emulation.setCPUThrottlingRate`` 4 (a CPU four times slower);
- a 320×640 mobile viewport (touch, device scale 2), Accept-Language sv-SE.

Measured from navigation start (``performance.timeOrigin``), in the page:

- **safety**: the first animation frame with the safety page's heading in
  it, and the first contentful paint (the Paint Timing API);
- **exit handler**: when the early quick exit's click listener was attached
  (the inline script in <head>); **exit press**: a second series presses the
  button as soon as it can be pressed and records when the press landed,
  whether the page was blank and ``location.replace("/exit")`` under way at
  the end of that same event dispatch, that the neutral site was reached,
  and that Back does not return;
- **script**: the first frame in which the script has taken the safety page
  over ("continue" enabled); when its request went and its last byte came
  (Resource Timing);
- **socket**: when the page's first WebSocket was created and opened, and
  when the socket.io connect went, its answer and the pushed ``status`` came
  (each packet's type and event name only, never a payload);
- **chat ready**: the youth taps "continue" as soon as it is enabled and
  "skip" on the start screen as soon as it shows; the first frame of the
  waiting screen (the server has accepted the start: the script is loaded,
  the socket connected, the start button works).

Several runs; median and worst. Speed is reported here, never asserted in
tests. Usage::

    .venv/bin/python -m loadtests.slowphone [--runs 5] [--out DIR]
    make loadtest-slowphone

The report (``report.md`` and ``results.json``) goes to
``loadtests/results/<UTC stamp>-slowphone/`` unless ``--out`` says otherwise.
Method and figures: docs/performance.md, "The youth page on a slow phone".
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp

from chatserver.client.reference import ReferenceClient, staff_login
from chatserver.settings import REPO_ROOT
from loadtests.servers import free_port

CHROMIUM = os.environ.get("CHAT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
LATENCY_MS = 2000
THROUGHPUT_BYTES_PER_SEC = 50_000
CPU_SLOWDOWN = 4
VIEWPORT = {"width": 320, "height": 640}
TARGETS_MS = {"safety": 4000, "exit": 4000, "chat ready": 8000}
STAFF_PASSWORD = "slow phone benchmark only"  # noqa: S105 - a throwaway local account
DIST = REPO_ROOT / "web_client" / "dist"

# Runs in the page before any of its own scripts: samples every animation
# frame for what it would show, and notes when the first click listener on
# window (the early quick exit's) was attached and when a press landed.
WATCH = r"""
(() => {
  const t = (window.__slow = {frames: {}, handler: null, press: null, atPress: null});
  const add = EventTarget.prototype.addEventListener;
  EventTarget.prototype.addEventListener = function (type, fn, opts) {
    if (this === window && type === 'click' && t.handler === null) t.handler = performance.now();
    return add.call(this, type, fn, opts);
  };
  // Capture on window: runs before the early exit's bubble-phase listener.
  add.call(window, 'click', () => { t.press = performance.now(); }, true);
  let nav = null;
  if (window.navigation) {
    add.call(navigation, 'navigate', (e) => { nav = new URL(e.destination.url).pathname; });
  }
  // Bubble phase on window, added after the early exit (whose script runs
  // later): looks at the page at the end of the press's own dispatch.
  const watchEnd = () => add.call(window, 'click', () => {
    t.atPress = {press: t.press, nav, hidden: !!(document.body && document.body.hidden)};
    console.log('SLOWEXIT ' + JSON.stringify(t.atPress));
  });
  // The socket's timeline: when each WebSocket was created and opened, and
  // when its first packets went and came (their engine.io / socket.io type
  // and event name only, never a payload).
  t.ws = [];
  const NativeWS = window.WebSocket;
  const kind = (d) => (typeof d === 'string' ? d.slice(0, 24).split(/[{,[]/)[0] + (
    d.startsWith('42') ? ' ' + (d.match(/\["([a-z_]+)"/) || [])[1] : '') : 'binary');
  window.WebSocket = class extends NativeWS {
    constructor(...args) {
      super(...args);
      const w = {created: performance.now(), open: null, packets: []};
      t.ws.push(w);
      const note = (dir, d) => {
        if (w.packets.length < 12) w.packets.push([performance.now(), dir, kind(d)]);
      };
      add.call(this, 'open', () => { w.open = performance.now(); });
      add.call(this, 'message', (e) => note('in', e.data));
      const send = this.send;
      this.send = (d) => { note('out', d); return send.call(this, d); };
    }
  };
  const seen = {
    heading: () => document.querySelector('main h1'),
    exit: () => document.getElementById('qx'),
    script: () => document.querySelector('main[data-screen=safety] #go-on:not([disabled])'),
    profile: () => document.querySelector('main[data-screen=profile]'),
    waiting: () => document.querySelector('main[data-screen=waiting]'),
  };
  let watching = false;
  function frame() {
    const now = performance.now();
    for (const [k, found] of Object.entries(seen)) {
      if (t.frames[k] === undefined && found()) t.frames[k] = now;
    }
    if (!watching && t.handler !== null) { watching = true; watchEnd(); }
    if (t.frames.waiting === undefined) requestAnimationFrame(frame);
  }
  requestAnimationFrame(frame);
})();
"""

COLLECT = """() => ({
  slow: window.__slow,
  paint: Object.fromEntries(performance.getEntriesByType('paint').map(e => [e.name, e.startTime])),
  nav: (() => { const n = performance.getEntriesByType('navigation')[0];
                return n ? {responseStart: n.responseStart, responseEnd: n.responseEnd,
                            domContentLoaded: n.domContentLoadedEventEnd, load: n.loadEventEnd,
                            transfer: n.transferSize, body: n.encodedBodySize,
                            decoded: n.decodedBodySize} : null; })(),
  resources: performance.getEntriesByType('resource').map(r => ({
    name: new URL(r.name).pathname, start: r.startTime, end: r.responseEnd,
    transfer: r.transferSize, body: r.encodedBodySize, decoded: r.decodedBodySize})),
})"""


class Neutral:
    """The stand-in for the configured neutral exit site."""

    def __init__(self) -> None:
        self.hits = 0
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.hits += 1
                body = b"<!doctype html><title>Neutral</title><p>A neutral page.</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/neutral"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Server:
    """``chatserver serve`` (config/test.toml: no start limit per address, so
    every run can start a chat from 127.0.0.1) with one counsellor account."""

    def __init__(self, data_dir: Path, exit_url: str) -> None:
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        self.env = {**os.environ, "CHAT_CONFIG": str(REPO_ROOT / "config" / "test.toml"),
                    "CHAT_DATA_DIR": str(data_dir), "CHAT_PORT": str(self.port),
                    "CHAT_PUBLIC_ORIGIN": self.url, "CHAT_EXIT_URL": exit_url,
                    "CHAT_LOG_LEVEL": "WARNING"}
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = (data_dir / "server.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "chatserver", "serve"],
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=REPO_ROOT)
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"chatserver exited: see {data_dir / 'server.log'}")
            try:
                with direct.open(self.url + "/readyz", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("chatserver did not become ready in 60 s")
            time.sleep(0.1)

    def add_counsellor(self) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "chatserver", "staff", "add", "bench", "--role",
             "counsellor", "--alias", "Mira", "--password-stdin"],
            input=STAFF_PASSWORD + "\n", env=self.env, capture_output=True, text=True,
            timeout=60, check=True, cwd=REPO_ROOT).stdout
        uri = next(w for w in out.split() if w.startswith("otpauth://"))
        return str(pyotp.parse_uri(uri).secret)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


async def throttled_page(browser: Any) -> tuple[Any, Any]:
    ctx = await browser.new_context(viewport=VIEWPORT, is_mobile=True, has_touch=True,
                                    device_scale_factor=2, locale="sv-SE")
    page = await ctx.new_page()
    cdp = await ctx.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": LATENCY_MS,
        "downloadThroughput": THROUGHPUT_BYTES_PER_SEC,
        "uploadThroughput": THROUGHPUT_BYTES_PER_SEC})
    await cdp.send("Emulation.setCPUThrottlingRate", {"rate": CPU_SLOWDOWN})
    await page.add_init_script(WATCH)
    return ctx, page


async def chat_run(browser: Any, url: str) -> dict[str, Any]:
    """Open the page and go to the queue as fast as a youth could."""
    ctx, page = await throttled_page(browser)
    encodings: dict[str, str] = {}
    page.on("response", lambda r: encodings.__setitem__(
        r.url.split(url, 1)[-1], r.headers.get("content-encoding", "identity")))
    try:
        await page.goto(url + "/", wait_until="commit")
        await page.wait_for_selector("main[data-screen=safety] #go-on:not([disabled])",
                                     timeout=120_000)
        await page.tap("#go-on")
        await page.wait_for_selector("main[data-screen=profile] #skip", timeout=120_000)
        await page.tap("#skip")
        await page.wait_for_selector("main[data-screen=waiting]", timeout=120_000)
        await page.wait_for_function("() => window.__slow.frames.waiting !== undefined",
                                     timeout=30_000)
        got = await page.evaluate(COLLECT)
        got["encodings"] = encodings
        return dict(got)
    finally:
        await ctx.close()


async def exit_run(browser: Any, url: str, neutral: Neutral) -> dict[str, Any]:
    """Press the quick exit as soon as it can be pressed."""
    ctx, page = await throttled_page(browser)
    seen: list[dict[str, Any]] = []
    page.on("console", lambda m: seen.append(json.loads(m.text.split(" ", 1)[1]))
            if m.text.startswith("SLOWEXIT ") else None)
    try:
        before = neutral.hits
        await page.goto(url + "/", wait_until="commit")
        await page.wait_for_selector("#qx", state="visible", timeout=120_000)
        await page.wait_for_function("() => window.__slow.handler !== null", timeout=120_000)
        await page.tap("#qx")
        await page.wait_for_url(neutral.url, timeout=120_000)
        slow = seen[0] if seen else None
        reached = neutral.hits > before
        await page.go_back()
        await page.wait_for_load_state("commit", timeout=30_000)
        back_on_page = page.url.startswith(url)
        return {"slow": slow, "reached_neutral": reached, "back_returns": back_on_page}
    finally:
        await ctx.close()


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "worst": max(values), "best": min(values)}


def figures(chat: list[dict[str, Any]], exits: list[dict[str, Any]]) -> dict[str, Any]:
    def col(key: str) -> list[float]:
        return [r["slow"]["frames"][key] for r in chat]

    def script(key: str) -> list[float]:
        return [next(x[key] for x in r["resources"] if x["name"].endswith(".js")) for r in chat]

    def socket(key: str) -> list[float]:
        # The first WebSocket of the run: the one the start went over.
        return [r["slow"]["ws"][0][key] for r in chat]

    def packet(direction: str, prefix: str) -> list[float]:
        return [next(p[0] for p in r["slow"]["ws"][0]["packets"]
                     if p[1] == direction and p[2].startswith(prefix)) for r in chat]

    rows: dict[str, list[float]] = {
        "HTML received (navigation timing responseEnd)": [r["nav"]["responseEnd"] for r in chat],
        "first contentful paint": [r["paint"]["first-contentful-paint"] for r in chat],
        "safety heading in a frame": col("heading"),
        "exit button in a frame": col("exit"),
        "early exit listening": [r["slow"]["handler"] for r in chat],
        "script requested": script("start"),
        "script received": script("end"),
        "WebSocket created": socket("created"),
        "WebSocket open (handshake answered)": socket("open"),
        "socket.io connect sent": packet("out", "40/youth"),
        "socket.io connected (answer received)": packet("in", "40/youth"),
        "status received (pushed after connect)": packet("in", "42/youth status"),
        "script took over (continue enabled)": col("script"),
        "start screen (after tapping continue)": col("profile"),
        "chat ready (waiting screen after skip)": col("waiting"),
    }
    presses = [e["slow"]["press"] for e in exits if e["slow"]]
    if presses:
        rows["exit pressed (earliest possible)"] = presses
    return {name: summary(vals) for name, vals in rows.items()}


def weights(run: dict[str, Any]) -> list[dict[str, Any]]:
    out = [{"file": "/ (HTML)", "transfer": run["nav"]["transfer"], "body": run["nav"]["body"],
            "decoded": run["nav"]["decoded"], "encoding": run["encodings"].get("/", "?")}]
    for r in run["resources"]:
        if r["name"].startswith(("/assets/", "/favicon")):
            out.append({"file": r["name"], "transfer": r["transfer"], "body": r["body"],
                        "decoded": r["decoded"], "encoding": run["encodings"].get(r["name"], "?"),
                        "start": round(r["start"]), "end": round(r["end"])})
    return out


def report(result: dict[str, Any]) -> str:
    lines = [f"# Slow phone: {result['when']}", "",
             f"Commit {result['commit']}; {result['runs']} runs per series; "
             f"latency {LATENCY_MS} ms per request, {THROUGHPUT_BYTES_PER_SEC} B/s down and up, "
             f"CPU ÷{CPU_SLOWDOWN}, {VIEWPORT['width']}×{VIEWPORT['height']} mobile, sv-SE.", "",
             "| from navigation start | median ms | worst ms | best ms |", "|---|---|---|---|"]
    for name, s in result["figures"].items():
        lines.append(f"| {name} | {s['median']:.0f} | {s['worst']:.0f} | {s['best']:.0f} |")
    lines += ["", "Targets: safety readable and exit working ≤ 4000 ms, chat ready ≤ 8000 ms "
              "(worst run): " + ", ".join(f"{k} {'meets' if v else 'MISSES'}"
                                          for k, v in result["targets"].items()), "",
              "Quick exit presses: " + ", ".join(
                  f"{'reached' if e['reached_neutral'] else 'NOT reached'} the neutral site, "
                  f"Back {'RETURNED' if e['back_returns'] else 'stayed away'}, "
                  f"at the end of the press {e['slow'] or '?'}"
                  for e in result["exits"]), "",
             "| file (first run) | sent bytes | body | decoded | encoding |",
             "|---|---|---|---|---|"]
    for w in result["weights"]:
        lines.append(f"| {w['file']} | {w['transfer']} | {w['body']} | {w['decoded']} "
                     f"| {w['encoding']} |")
    return "\n".join(lines) + "\n"


async def measure(runs: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from playwright.async_api import async_playwright

    if not (DIST / "index.html").is_file():
        raise SystemExit("web_client/dist is not built: cd web_client && node build.mjs")
    neutral = Neutral()
    server = Server(Path(tempfile.mkdtemp(prefix="slowphone-")) / "var", neutral.url)
    counsellor = ReferenceClient()
    try:
        secret = server.add_counsellor()
        login = await staff_login(server.url, "bench", STAFF_PASSWORD,
                                  pyotp.TOTP(secret).now())
        await counsellor.connect(server.url, "/staff", headers={"Cookie": login.cookie})
        await counsellor.duty(True)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                chat: list[dict[str, Any]] = []
                exits: list[dict[str, Any]] = []
                for i in range(runs):
                    chat.append(await chat_run(browser, server.url))
                    exits.append(await exit_run(browser, server.url, neutral))
                    print(f"run {i + 1}/{runs}: chat ready at "
                          f"{chat[-1]['slow']['frames']['waiting']:.0f} ms", flush=True)
            finally:
                await browser.close()
    finally:
        await counsellor.disconnect()
        server.stop()
        neutral.close()
    return chat, exits


def summarise(chat: list[dict[str, Any]], exits: list[dict[str, Any]], out: Path
              ) -> dict[str, Any]:
    figs = figures(chat, exits)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=REPO_ROOT).stdout.strip()
    worst = {k: v["worst"] for k, v in figs.items()}
    exit_ready = max(worst["exit button in a frame"], worst["early exit listening"])
    result = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit + (" + working tree" if _dirty() else ""),
        "runs": len(chat),
        "conditions": {"latency_ms": LATENCY_MS, "throughput_bytes_per_sec":
                       THROUGHPUT_BYTES_PER_SEC, "cpu_slowdown": CPU_SLOWDOWN,
                       "viewport": VIEWPORT, "locale": "sv-SE"},
        "figures": figs,
        "targets": {
            "safety": worst["safety heading in a frame"] <= TARGETS_MS["safety"],
            "exit": exit_ready <= TARGETS_MS["exit"]
            and all(e["reached_neutral"] and not e["back_returns"] for e in exits),
            "chat ready": worst["chat ready (waiting screen after skip)"]
            <= TARGETS_MS["chat ready"],
        },
        "exits": exits,
        "weights": weights(chat[0]),
        "raw": chat,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(report(result), encoding="utf-8")
    return result


def _dirty() -> bool:
    return bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, cwd=REPO_ROOT).stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or REPO_ROOT / "loadtests" / "results" / f"{stamp}-slowphone"
    chat, exits = asyncio.run(measure(args.runs))
    result = summarise(chat, exits, out)
    print(report(result))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
