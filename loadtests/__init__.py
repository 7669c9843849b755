"""Load tests for peak concurrency (issue 5): a Node swarm speaking the
socket.io wire protocol (gen/), minimal baseline servers driven by the same
swarm in the same run (baselines/), scenarios (profiles.py), the runner that
pins servers and generator to separate cores (runner.py), and the JSON +
Markdown + SVG report (report.py). Results go to loadtests/results/ (ignored by
git); docs/performance.md holds the latest figures.

    python -m loadtests run --profile quick|full|smoke
"""
