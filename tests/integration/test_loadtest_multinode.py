"""CI smoke of the load harness's multinode profile (loadtests/README.md,
``python -m loadtests run --profile multinode-smoke``): two real chatserver
nodes on a private redis-server, a few hundred generator clients with every
conversation across the nodes, then kill -9 of one node while they chat.

Asserts integrity only — 0 lost, 0 duplicated, 0 out of order, 0 errors,
every conversation whole again after the kill. No timing asserts: the
figures are measured by ``make loadtest-multinode`` and written up in
docs/performance.md, "Several nodes on Redis".
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chatserver.settings import REPO_ROOT
from tests.helpers.redis_server import require_redis

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.timeout(240)]


def test_two_nodes_lose_nothing_and_survive_a_killed_node(tmp_path: Path) -> None:
    require_redis()
    assert shutil.which("node"), "the load generator needs node"
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "run", "--profile", "multinode-smoke",
         "--out", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=230)
    results = out / "results.json"
    assert results.exists(), done.stderr[-3000:]
    doc = json.loads(results.read_text())
    assert [s["step"]["scenario"] for s in doc["steps"]] == ["relay", "failover"]
    for step in doc["steps"]:
        label = step["step"]["label"]
        assert step.get("fatal") is None, (label, step.get("fatal"))
        assert step["cluster"]["nodes"] == 2 and step["cluster"]["redis"], label
        integrity = step["integrity"]
        # Given conversations whose youth and counsellor are on different
        # nodes, then every acknowledged send arrived exactly once, in order.
        assert integrity["sent"] > 0, label
        assert integrity["received"] == integrity["sent"], (label, integrity)
        assert integrity["lost"] == integrity["duplicated"] == 0, (label, integrity)
        assert integrity["out_of_order"] == 0, (label, integrity)
        assert step["errors"] == {}, (label, step["errors"])
        assert step["counters"]["connect_failures"] == 0, label
        assert step["counters"]["unexpected_disconnects"] == 0, label
        assert step["server_problems"] == [], (label, step["server_problems"])
        result = step["result"]
        assert result["cross_node_conversations"] == result["conversations"] > 0, result
    relay = doc["steps"][0]["result"]
    # Every server-side process's CPU was read in each window: both nodes and Redis.
    assert set(relay["latency"]["cpu_secs_by_process"]) == {"n1", "n2", "redis"}
    failover = doc["steps"][1]["result"]
    # When n1 was killed, every client it held reconnected to n2 and resumed:
    # every conversation whole again, no resume refused.
    assert failover["killed"] == "n1"
    assert failover["whole_again"] == failover["conversations"], failover
    assert failover["resume_failures"] == 0, failover
    assert done.returncode == 0, done.stderr[-3000:]
