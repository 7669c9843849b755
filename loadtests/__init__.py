"""Load tests for peak concurrency (what they answer: loadtests/README.md;
the targets: docs/performance.md): a Node swarm speaking the
socket.io wire protocol (gen/), minimal baseline servers driven by the same
swarm in the same run (baselines/), scenarios (profiles.py), the runner that
pins servers and generator to separate cores (runner.py), and the JSON +
Markdown + SVG report (report.py). Results go to loadtests/results/ (ignored by
git); docs/performance.md holds the latest figures.

    python -m loadtests run --profile quick|full|smoke

One hostile client beside a real conversation (hostile.py, attacks.py;
figures in docs/hostile-client.md):

    python -m loadtests.hostile [--phase-secs N] [--small]
"""
