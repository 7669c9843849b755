"""CI smoke of the load harness (loadtests/README.md): a few hundred real clients for a
few seconds against the real server (``python -m loadtests run --profile
smoke``: the Node swarm over the socket.io wire protocol, plus the PyNaCl
sample through the reference client), then a reconnect storm; and the
hostile-client scenario (``python -m loadtests.hostile --small``): one
hostile client on 127.0.0.1 beside a real E2E conversation.

Asserts integrity only — 0 lost, 0 duplicated, 0 out of order, 0 errors,
every sampled message decrypted. No timing asserts: speed is measured by
``make loadtest`` and written up in docs/performance.md, never here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chatserver.settings import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_smoke_run_loses_nothing(tmp_path: Path) -> None:
    # node is a prerequisite of `make test` (npm builds the web client): no skip.
    assert shutil.which("node"), "the load generator needs node"
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "loadtests", "run", "--profile", "smoke", "--out", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=170)
    results = out / "results.json"
    assert results.exists(), done.stderr[-3000:]
    doc = json.loads(results.read_text())
    assert [s["step"]["group"] for s in doc["steps"]] == ["relay", "storm"]
    for step in doc["steps"]:
        label = step["step"]["label"]
        assert step.get("fatal") is None, (label, step.get("fatal"))
        integrity = step["integrity"]
        # Given a few hundred clients chatting (and, in the storm, every one of
        # them dropping and resuming), then every acknowledged send arrived
        # exactly once and in order.
        assert integrity["sent"] > 0, label
        assert integrity["received"] == integrity["sent"], (label, integrity)
        assert integrity["lost"] == 0, (label, integrity)
        assert integrity["duplicated"] == 0, (label, integrity)
        assert integrity["out_of_order"] == 0, (label, integrity)
        assert step["errors"] == {}, (label, step["errors"])
        assert step["counters"]["connect_failures"] == 0, label
        assert step["counters"]["unexpected_disconnects"] == 0, label
        assert step["server_problems"] == [], (label, step["server_problems"])
    storm = doc["steps"][1]["result"]
    assert storm["whole_again"] == storm["conversations"] > 0
    assert storm["resume_failures"] == 0
    sample = doc["steps"][0]["e2e_sample"]
    # Real PyNaCl boxes beside the swarm: each one decrypted to what was sent.
    assert sample.get("failed") is None, sample
    assert sample["verified"] == sample["sent"] > 0, sample
    assert sample["undecryptable"] == sample["mismatched"] == sample["gaps"] == 0, sample
    assert done.returncode == 0, done.stderr[-3000:]


def test_hostile_client_is_refused_and_the_neighbour_loses_nothing(tmp_path: Path) -> None:
    # Given one real server with the shipped connection bounds and a real E2E
    # conversation on it, when one client on 127.0.0.1 sends binary packets,
    # floods handshakes, holds slowloris sockets and WebSockets for 2 s
    out = tmp_path / "hostile"
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.hostile", "--small", "--out", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=170)
    report = out / "hostile.json"
    assert report.exists(), done.stderr[-3000:]
    doc = json.loads(report.read_text())
    assert (out / "hostile.md").exists()
    # Then the neighbour lost nothing, and both its sides are still connected
    neighbour = doc["raw"]["neighbour"]
    assert neighbour["sent"] > 0, neighbour
    assert neighbour["received"] == neighbour["sent"] and neighbour["lost"] == 0, neighbour
    assert neighbour["undecryptable"] == neighbour["gaps"] == neighbour["unexpected"] == 0
    assert neighbour["send_errors"] == {}, neighbour
    assert neighbour["youth_connected"] and neighbour["staff_connected"], neighbour
    # And every binary attack that got in was closed by the server
    attacks = doc["raw"]["attack"]["attacks"]
    binary = attacks["binary"]["counts"]
    assert binary["headers_sent"] >= 1, binary
    assert binary.get("closed_by_server", 0) == binary["headers_sent"], binary
    assert binary.get("not_closed", 0) == 0, binary
    # And the handshake flood met the bound: 401 too_many_handshakes
    flood = attacks["flood"]["counts"]
    assert flood.get("refused_401_too_many_handshakes", 0) >= 1, flood
    # And the server never held more anonymous sessions than the bound allows
    settings = doc["settings"]
    held = doc["summary"]["server_held_peak"]
    assert held["pending_handshakes"] <= settings["max_pending_handshakes_per_address"], held
    assert doc["summary"]["bound_sessions_held"] <= settings["max_connections_per_address"]
    assert doc["server_problems"] == [], doc["server_problems"]
    assert done.returncode == 0, done.stderr[-3000:]
