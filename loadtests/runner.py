"""Run a profile: for each step start a server pinned to the server core, run
the swarm pinned to the generator core (and, for chat steps, the PyNaCl sample
beside it), collect the JSON, stop the server; then write the report.

Bounded: every swarm run has its own time limit (plan ``max_secs``) and the
runner kills it 60 s after that; everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtests import multinode, report
from loadtests.profiles import PROFILES, Step
from loadtests.servers import PYTHON, Server, cores, pinned, start

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def ensure_node_deps() -> None:
    """npm ci the generator's one dependency (ws) when missing or stale."""
    if shutil.which("node") is None:
        raise SystemExit("loadtests: node is required (apt-get install nodejs npm)")
    stamp = HERE / "node_modules" / ".installed"
    lock = HERE / "package-lock.json"
    if stamp.exists() and stamp.stat().st_mtime >= lock.stat().st_mtime:
        return
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE,
                   check=True)
    stamp.touch()


def _sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict[str, Any]:
    import aiohttp
    import engineio
    import socketio

    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    server_core, gen_core = cores()
    return {
        "host": platform.node(), "kernel": platform.release(), "cpu": cpu_model,
        "cores": os.cpu_count(), "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(), "node": _sh(["node", "--version"]),
        "aiohttp": aiohttp.__version__, "python_socketio": socketio.__version__
        if hasattr(socketio, "__version__") else _pkg_version("python-socketio"),
        "python_engineio": _pkg_version("python-engineio"),
        "engineio_module": getattr(engineio, "__name__", ""),
        "pinning": {"server_core": server_core, "generator_core": gen_core},
        "git": _sh(["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"]),
        "git_dirty": bool(_sh(["git", "-C", str(HERE.parent), "status", "--porcelain"])),
    }


def _pkg_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return ""


def uptime() -> str:
    return _sh(["uptime"])


# Working-copy files laid over the snapshot besides loadtests/: the GC policy
# is measured by this harness while it is being tuned.
OVERLAY = ("chatserver/gc_policy.py",)


def snapshot_head(dest: Path) -> str:
    """The committed tree (git archive HEAD) plus this working copy's
    loadtests/ and OVERLAY, so a run measures one coherent version while
    others edit the working tree. Returns the commit."""
    root = HERE.parent
    commit = _sh(["git", "-C", str(root), "rev-parse", "HEAD"])
    archive = subprocess.run(["git", "-C", str(root), "archive", "HEAD"], capture_output=True,
                             check=True).stdout
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    shutil.rmtree(dest / "loadtests", ignore_errors=True)
    shutil.copytree(HERE, dest / "loadtests", symlinks=True,
                    ignore=shutil.ignore_patterns("results", "__pycache__"))
    for rel in OVERLAY:
        shutil.copy2(root / rel, dest / rel)
    return commit


# What a server needs from the working tree, copied by --from-tree
# (web_client/ is linked: the pages are served, not measured here).
TREE_PARTS = ("chatserver", "config", "loadtests", "pyproject.toml")


def snapshot_tree(dest: Path) -> str:
    """A copy of this working tree's server code as it is now (uncommitted
    work included), so that every step of a run measures one version while
    others edit the tree. Returns a digest of the copied chatserver/ files."""
    import hashlib

    root = HERE.parent
    dest.mkdir(parents=True)
    for part in TREE_PARTS:
        src = root / part
        if src.is_dir():
            shutil.copytree(src, dest / part, symlinks=True,
                            ignore=shutil.ignore_patterns("results", "__pycache__"))
        else:
            shutil.copy2(src, dest / part)
    (dest / "web_client").symlink_to(root / "web_client")
    digest = hashlib.sha256()
    for f in sorted((dest / "chatserver").rglob("*.py")):
        digest.update(f.relative_to(dest).as_posix().encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()[:12]


def run_step(step: Step, out_dir: Path, root: Path) -> dict[str, Any]:
    server_core, gen_core = cores()
    wanted = step.accounts + step.e2e_pairs
    t0 = time.monotonic()
    server: Server | multinode.Cluster
    extra: dict[str, Any] = {}
    if step.nodes:
        server, accounts = multinode.start(step.nodes, step.redis, out_dir / "logs",
                                           core=server_core, chat_overrides=step.server,
                                           accounts=(wanted, step.capacity), root=root,
                                           label=step.label)
        extra = server.plan_fields()
    else:
        server, accounts = start(step.stack, out_dir / "logs", core=server_core,
                                 chat_overrides=step.server if step.stack == "chat" else None,
                                 accounts=(wanted, step.capacity), root=root)
    setup_secs = time.monotonic() - t0
    # Plans hold account passwords: keep them in a private temp dir, not results/.
    work = Path(tempfile.mkdtemp(prefix="loadplan-"))
    try:
        plan = {**step.plan, "stack": step.stack, "scenario": step.scenario,
                "label": step.label, "base": server.base, "origin": server.origin,
                "server_pid": server.pid, "accounts": accounts[:step.accounts], **extra}
        if isinstance(server, multinode.Cluster):
            extra["leader_before"] = server.leader()
        plan_path = work / "plan.json"
        plan_path.write_text(json.dumps(plan))
        sample_plan = None
        if step.e2e_pairs:
            sample_plan = work / "sample.json"
            sample_plan.write_text(json.dumps({
                "base": server.base, "origin": server.origin,
                "accounts": accounts[step.accounts:], "pairs": step.e2e_pairs,
                "messages": step.e2e_messages, "interval_secs": 0.5}))
        result = _run_swarm(step, plan_path, sample_plan, gen_core, out_dir,
                            float(plan.get("max_secs", 600)), root)
        if isinstance(server, multinode.Cluster):
            extra["leader_after"] = server.leader()
    finally:
        server_log_tail = _server_problems(server)
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    result["server_gc"] = server.gc_stats()
    if step.group == "claims":
        result["queue_ops"] = _queue_bench(root, gen_core)
    result.update({"step": {k: v for k, v in asdict(step).items() if k != "plan"},
                   "plan": {k: v for k, v in step.plan.items()},
                   "server_setup_secs": round(setup_secs, 1),
                   "server_problems": server_log_tail,
                   "server_settings": step.server if step.stack == "chat" else {}})
    if step.nodes:
        result["cluster"] = {"nodes": step.nodes, "redis": step.redis,
                             "leader_before": extra.get("leader_before", ""),
                             "leader_after": extra.get("leader_after", "")}
    return result


def _queue_bench(root: Path, core: str | None) -> list[dict[str, Any]]:
    try:
        done = subprocess.run(pinned([PYTHON, "-m", "loadtests.queue_bench"], core),
                              cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                              capture_output=True, text=True, timeout=120, check=True)
        return list(json.loads(done.stdout))
    except (subprocess.SubprocessError, ValueError):
        return []


def _server_problems(server: Server | multinode.Cluster) -> list[str]:
    """Tracebacks and ERROR lines in the server's log (the log holds no content:
    level WARNING, and the server never logs ciphertext or addresses); every
    node's log for a multi-node step."""
    paths = server.log_paths() if isinstance(server, multinode.Cluster) else [server.log_path]
    lines: list[str] = []
    for path in paths:
        try:
            lines += path.read_text(errors="replace").splitlines()
        except OSError:
            pass
    bad = [ln for ln in lines if "Traceback" in ln or " ERROR " in ln or "Error:" in ln]
    return bad[:20]


def _run_swarm(step: Step, plan_path: Path, sample_plan: Path | None, gen_core: str | None,
               out_dir: Path, max_secs: float, root: Path) -> dict[str, Any]:
    log_path = out_dir / "logs" / f"swarm-{step.label}.log"
    swarm = root / "loadtests" / "gen" / "swarm.mjs"
    proc = subprocess.Popen(pinned(["node", str(swarm), str(plan_path)], gen_core),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sample: dict[str, Any] = {}

    def run_sample() -> None:
        assert sample_plan is not None
        cmd = pinned([PYTHON, "-m", "loadtests.e2e_sample", str(sample_plan)], gen_core)
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                                  cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
            sample.update(json.loads(done.stdout.strip().splitlines()[-1]))
        except (subprocess.SubprocessError, json.JSONDecodeError, IndexError) as exc:
            tail = done.stderr.strip().splitlines()[-3:] if "done" in locals() else []
            sample["failed"] = f"{exc!r} {' | '.join(tail)}"

    sample_thread: threading.Thread | None = None

    def pump_stderr() -> None:
        nonlocal sample_thread
        assert proc.stderr is not None
        with log_path.open("w") as fh:
            for line in proc.stderr:
                fh.write(line)
                fh.flush()
                sys.stderr.write(line)
                if "window open" in line and sample_plan is not None and sample_thread is None:
                    sample_thread = threading.Thread(target=run_sample, daemon=True)
                    sample_thread.start()

    out_lines: list[str] = []

    def pump_stdout() -> None:
        assert proc.stdout is not None
        out_lines.extend(proc.stdout)

    err_thread = threading.Thread(target=pump_stderr, daemon=True)
    out_thread = threading.Thread(target=pump_stdout, daemon=True)
    err_thread.start()
    out_thread.start()
    try:
        proc.wait(timeout=max_secs + 60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    except BaseException:
        proc.kill()
        raise
    out_thread.join(10)
    err_thread.join(5)
    out = "".join(out_lines)
    if sample_thread is not None:
        sample_thread.join(320)
    lines = [ln for ln in (out or "").splitlines() if ln.startswith("{")]
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        result = {"fatal": f"swarm printed no result (exit {proc.returncode})"}
    if sample_plan is not None:
        result["e2e_sample"] = sample or {"failed": "the sample did not start (no window opened)"}
    return result


def _stop_on_sigterm() -> None:
    # A terminated run still stops its server and swarm (run_step's finally).
    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)


def _run_steps(steps: list[Step], doc: dict[str, Any], out_dir: Path, root: Path) -> None:
    for i, step in enumerate(steps, 1):
        load = uptime().split("load average:")[-1].strip()
        print(f"== [{i}/{len(steps)}] {step.label} (load: {load})", file=sys.stderr, flush=True)
        t = time.monotonic()
        try:
            res = run_step(step, out_dir, root)
        except Exception as exc:  # a broken step must not lose the others' results
            res = {"fatal": repr(exc), "step": asdict(step) | {"plan": None}}
        res["wall_secs"] = round(time.monotonic() - t, 1)
        res["load_after"] = uptime()
        doc["steps"].append(res)
        (out_dir / "results.json").write_text(json.dumps(doc, indent=1))


def run(profile: str, only: list[str] | None = None, out: Path | None = None,
        from_head: bool = False, from_tree: bool = False) -> Path:
    _stop_on_sigterm()
    ensure_node_deps()
    steps = PROFILES[profile]()
    if only:
        # "=label" selects exactly that step ("=peak": not its lever variants);
        # a prefix ends at a "-" ("peak" takes peak-gc-…, not peakrate-…).
        steps = [s for s in steps if any(s.label == o[1:] if o.startswith("=") else
                                         o in (s.group, s.label)
                                         or s.label.startswith(o.rstrip("-") + "-")
                                         for o in only)]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    # Absolute: --from-head servers run in another directory and write their
    # GC record into logs/ here (a relative --out lost it).
    out_dir = (out or RESULTS / f"{stamp}-{profile}").resolve()
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "profile": profile, "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": f"python -m loadtests run --profile {profile}"
                   + (f" --only {','.join(only)}" if only else "")
                   + (" --from-head" if from_head else "")
                   + (" --from-tree" if from_tree else ""),
        "machine": machine(), "load_before": uptime(), "steps": [],
    }
    root = HERE.parent
    snap_dir: Path | None = None
    if from_head:
        snap_dir = Path(tempfile.mkdtemp(prefix="chat-snapshot-"))
        doc["measured_commit"] = snapshot_head(snap_dir / "tree")
        root = snap_dir / "tree"
    elif from_tree:
        snap_dir = Path(tempfile.mkdtemp(prefix="chat-snapshot-"))
        doc["measured_tree_digest"] = snapshot_tree(snap_dir / "tree")
        root = snap_dir / "tree"
    try:
        _run_steps(steps, doc, out_dir, root)
    finally:
        if snap_dir is not None:
            shutil.rmtree(snap_dir, ignore_errors=True)
    doc["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    doc["load_after"] = uptime()
    (out_dir / "results.json").write_text(json.dumps(doc, indent=1))
    report.write(out_dir, doc)
    if out is None:
        latest = RESULTS / "latest"
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(out_dir.name)
    print(f"loadtests: report in {out_dir / 'report.md'}", file=sys.stderr)
    return out_dir
