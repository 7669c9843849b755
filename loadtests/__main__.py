"""``python -m loadtests run --profile full|quick|smoke [--only GROUP,...]`` and
``python -m loadtests report RESULTS_DIR`` (re-render a report)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from loadtests import report, runner, stalls
from loadtests.profiles import PROFILES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a profile and write results + report")
    run.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    run.add_argument("--only", help="comma-separated groups or step labels "
                     "(relay, levers, peak, storm, ramp, claims, relay-chat-4000, ...); "
                     "=LABEL for exactly one step")
    run.add_argument("--out", type=Path, help="results directory (default: results/<stamp>)")
    run.add_argument("--from-head", action="store_true",
                     help="measure the committed HEAD (plus this loadtests/), not the "
                          "working tree — for runs while others edit the tree")
    run.add_argument("--from-tree", action="store_true",
                     help="measure a copy of the working tree taken at the start (uncommitted "
                          "work included), so every step runs one version while others edit")
    run.add_argument("--stalls", action="store_true",
                     help="diagnosis: record every event-loop callback over 5 ms and every GC "
                          "pause in the chat server (logs/stalls-*.json); adds overhead, so "
                          "not for the reported figures")
    rep = sub.add_parser("report", help="re-render report.md and plots from results.json")
    rep.add_argument("results_dir", type=Path)
    mer = sub.add_parser("merge", help="one report from several runs (a later run's step "
                         "replaces an earlier one with the same label)")
    mer.add_argument("out_dir", type=Path)
    mer.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args(argv)
    if args.command == "merge":
        docs = [json.loads((r / "results.json").read_text()) for r in args.runs]
        merged = dict(docs[-1])
        steps: dict[str, dict[str, object]] = {}
        for d in docs:
            for step in d["steps"]:
                steps[step["step"]["label"]] = step
        merged["steps"] = list(steps.values())
        merged["command"] = " ; ".join(d["command"] for d in docs)
        merged["merged_from"] = [{"dir": r.name, "started_at": d["started_at"],
                                  "load_before": d["load_before"],
                                  "load_after": d.get("load_after"),
                                  "measured_commit": d.get("measured_commit")}
                                 for r, d in zip(args.runs, docs, strict=True)]
        merged["started_at"] = docs[0]["started_at"]
        merged["load_before"] = " | ".join(d["load_before"] for d in docs)
        merged["load_after"] = " | ".join(str(d.get("load_after")) for d in docs)
        args.out_dir.mkdir(parents=True, exist_ok=True)
        (args.out_dir / "results.json").write_text(json.dumps(merged, indent=1))
        report.write(args.out_dir, merged)
        return 0
    if args.command == "run":
        if args.stalls:
            os.environ[stalls.ENV] = "1"
        out = runner.run(args.profile, args.only.split(",") if args.only else None, args.out,
                         from_head=args.from_head, from_tree=args.from_tree)
        doc = json.loads((out / "results.json").read_text())
        return 0 if report.integrity_ok(doc) else 1
    doc = json.loads((args.results_dir / "results.json").read_text())
    report.write(args.results_dir, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
