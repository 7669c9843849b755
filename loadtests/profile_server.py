"""Where does the server's time go? Saturate chatserver (relay scenario), or
load it at a fixed rate (``--rate``), and sample it with py-spy; print the
hottest functions, self and inclusive.

    .venv/bin/pip install py-spy          # not a project dependency
    .venv/bin/python -m loadtests.profile_server --connections 1000 [--set key=value ...]

``--set`` passes chatserver settings (e.g. ``socketio_async_handlers=false``,
``gc_policy=default``). ``--nodes N`` runs N nodes on a private Redis
(loadtests/multinode.py; ``--nodes 1`` is one node on Redis), every client
on n1, and ``--node nK`` picks the node to sample (n2 of two: the log's
apply cost alone). The raw collapsed stacks are kept in
``loadtests/results/profile-<stamp>.txt`` for flame-graph tools.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtests import multinode, servers
from loadtests.profiles import relay_step
from loadtests.runner import RESULTS, ensure_node_deps

HERE = Path(__file__).resolve().parent


def top(raw: Path, n: int = 30) -> str:
    self_t: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        k = int(count)
        total += k
        names = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        self_t[names[-1]] += k
        for f in set(names):
            incl[f] += k
    out = [f"{total} samples", "-- self"]
    out += [f"{100 * k / total:5.1f}%  {f}" for f, k in self_t.most_common(n)]
    out += ["-- inclusive"]
    out += [f"{100 * k / total:5.1f}%  {f}" for f, k in incl.most_common(2 * n)]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--secs", type=int, default=15)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--nodes", type=int, default=0,
                        help="nodes on a private Redis (0: one embedded server)")
    parser.add_argument("--node", default="n1", help="with --nodes: the node to sample")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="messages per second per connection at a fixed rate "
                             "(0: closed-loop saturation)")
    args = parser.parse_args()
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(pyspy).exists():
        print("py-spy is not installed: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    ensure_node_deps()
    overrides: dict[str, Any] = dict(kv.split("=", 1) for kv in args.set)
    fixed = args.rate > 0
    step = relay_step("chat", args.connections,
                      latency_window=args.secs + 10.0 if fixed else None,
                      saturate_window=None if fixed else args.secs + 10.0,
                      latency_rate=args.rate or 0.5)
    server_core, gen_core = servers.cores()
    work = Path(tempfile.mkdtemp(prefix="loadprof-"))
    srv: servers.Server | multinode.Cluster
    extra: dict[str, Any] = {}
    if args.nodes:
        srv, accounts = multinode.start(args.nodes, True, work / "logs", core=server_core,
                                        chat_overrides={**step.server, **overrides},
                                        accounts=(step.accounts, step.capacity),
                                        root=HERE.parent, label="profile")
        extra = srv.plan_fields()
        sampled = next(n["pid"] for n in extra["nodes"] if n["name"] == args.node)
    else:
        srv, accounts = servers.start("chat", work / "logs", core=server_core,
                                      chat_overrides={**step.server, **overrides},
                                      accounts=(step.accounts, step.capacity))
        sampled = srv.pid
    RESULTS.mkdir(exist_ok=True)
    raw = RESULTS / f"profile-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.txt"
    try:
        plan = {**step.plan, "stack": "chat", "scenario": "relay", "label": "profile",
                "base": srv.base, "origin": srv.origin, "server_pid": srv.pid,
                "accounts": accounts, **extra}
        (work / "plan.json").write_text(json.dumps(plan))
        gen = subprocess.Popen(servers.pinned(["node", str(HERE / "gen" / "swarm.mjs"),
                                               str(work / "plan.json")], gen_core),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert gen.stderr is not None
        for line in gen.stderr:
            if ("window open" if fixed else "saturation window") in line:
                break
        time.sleep(3)
        subprocess.run([pyspy, "record", "-p", str(sampled), "-d", str(args.secs), "-r", "100",
                        "-f", "raw", "-o", str(raw), "--nonblocking"], capture_output=True,
                       check=True)
        out, _ = gen.communicate(timeout=300)
        result = json.loads(out.strip().splitlines()[-1])["result"]
        result = result["latency"] if fixed else result["saturate"]
    finally:
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'fixed rate' if fixed else 'saturation'}: {result['relayed_per_s']} msg/s at "
          f"{result.get('server_cpu_pct', '?')} % "
          f"server CPU ({args.connections} connections, settings {overrides or 'default'})")
    print(top(raw))
    print(f"raw stacks: {raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
