"""results.json -> report.md + SVG plots (latency CDF; throughput and RSS
against connections; claim latency against queue length; the capacity ramp)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtests import report_multinode
from loadtests.figures import fmt as _f
from loadtests.svgplot import line_chart

STACK_NAMES = {"bare": "bare aiohttp", "sio": "stock python-socketio", "chat": "chatserver"}
TARGET_P99_MS = 50.0
TARGET_P999_MS = 250.0
TARGET_RATIO = 0.25
AIM_RATIO = 0.35
TARGET_RSS_KB = 30.0


def _steps(doc: dict[str, Any], group: str) -> list[dict[str, Any]]:
    return [s for s in doc["steps"] if (s.get("step") or {}).get("group") == group]


def _res(step: dict[str, Any]) -> dict[str, Any]:
    return step.get("result") or {}


def _errors(step: dict[str, Any]) -> int:
    errs = sum((step.get("errors") or {}).values())
    c = step.get("counters") or {}
    return int(errs + c.get("connect_failures", 0) + c.get("unexpected_disconnects", 0))


def _late(i: dict[str, Any]) -> str:
    late, never = i.get("arrived_late_dropped"), i.get("never_arrived_in_gap")
    if not late and not never:
        return ""
    return f" (boxes skipped then arrived late: {late or 0}; never arrived: {never or 0})"


def integrity_ok(doc: dict[str, Any]) -> bool:
    for s in doc["steps"]:
        i = s.get("integrity") or {}
        if s.get("fatal") or i.get("lost") or i.get("duplicated") or i.get("out_of_order"):
            return False
        if _errors(s):
            return False
        e2e = s.get("e2e_sample")
        if e2e and (e2e.get("failed") or e2e.get("undecryptable") or e2e.get("mismatched")
                    or e2e.get("gaps") or e2e.get("errors")):
            return False
    return True


def _relay_table(steps: list[dict[str, Any]]) -> tuple[list[str], dict[int, dict[str, Any]]]:
    by_level: dict[int, dict[str, Any]] = {}
    for s in steps:
        r = _res(s)
        by_level.setdefault(s["plan"]["connections"], {})[s["step"]["stack"]] = s
    lines = ["| connections | stack | relayed msg/s at saturation | × bare | server CPU | "
             "msg/s per server core (CPU-normalised) | × bare | µs server CPU per msg | "
             "generator CPU | RSS / idle youth conn | RSS / paired youth conn |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for level in sorted(by_level):
        bare_sat = _res(by_level[level].get("bare", {})).get("saturate") or {}
        bare, bare_norm = bare_sat.get("relayed_per_s"), per_core(bare_sat)
        for stack in ("bare", "sio", "chat"):
            s = by_level[level].get(stack) or {}
            if not s:
                continue
            r = _res(s)
            sat = r.get("saturate") or {}
            rate, norm = sat.get("relayed_per_s"), per_core(sat)
            ratio = f"{rate / bare:.2f}" if rate and bare else "–"
            nratio = f"{norm / bare_norm:.2f}" if norm and bare_norm else "–"
            lines.append(f"| {level:,} | {STACK_NAMES[stack]} | {_f(rate)} | {ratio} | "
                         f"{_f(sat.get('server_cpu_pct'))} % | {_f(norm)} | {nratio} | "
                         f"{_f(round(1e6 / norm, 1) if norm else None)} | "
                         f"{_f(sat.get('gen_cpu_pct'))} % | "
                         f"{_f(r.get('rss_per_idle_youth_kb'))} KB | "
                         f"{_f(r.get('rss_per_paired_youth_kb'))} KB |")
    return lines, by_level


def per_core(sat: dict[str, Any]) -> int | None:
    """Relayed msg/s divided by the share of its core the server actually got:
    robust to other work on a shared machine (CPU time per message barely
    changes when the core is shared; wall-clock throughput does)."""
    rate, cpu = sat.get("relayed_per_s"), sat.get("server_cpu_pct")
    if not rate or not cpu:
        return None
    return round(float(rate) / (float(cpu) / 100))


def _latency_row(name: str, lat: dict[str, Any], bare_p99: float | None, extra: str = "") -> str:
    p99 = lat.get("p99_ms")
    ratio = f"{p99 / bare_p99:.1f}" if p99 and bare_p99 else "–"
    return (f"| {name} | {_f(lat.get('count'))} | {_f(lat.get('p50_ms'), 2)} | "
            f"{_f(lat.get('p95_ms'), 2)} | {_f(p99, 2)} | {ratio} | {_f(lat.get('p999_ms'), 2)} | "
            f"{_f(lat.get('max_ms'), 1)} |{extra}")


RELAY_LATENCY_HEAD = ["| stack | samples | p50 ms | p95 ms | p99 ms | p99 × bare | p99.9 ms | "
                      "max ms | window | offered / relayed msg/s | server CPU |",
                      "|---|---|---|---|---|---|---|---|---|---|---|"]


def _relay_latency(step: dict[str, Any]) -> dict[str, Any]:
    """A relay step's latency-window figures ({} without a window)."""
    return (_res(step).get("latency") or {}).get("latency") or {}


def _relay_latency_row(name: str, step: dict[str, Any], bare_p99: float | None) -> str:
    r = _res(step)
    lp = r.get("latency") or {}
    return _latency_row(name, _relay_latency(step), bare_p99,
                        f" {_f(lp.get('window_secs'))} s | {_f(r.get('latency_offered_per_s'))}"
                        f" / {_f(lp.get('relayed_per_s'))} | {_f(lp.get('server_cpu_pct'))} % |")


Target = tuple[str, str, str]  # (target, measured, verdict)
Cdf = dict[str, list[tuple[float, float]]]


@dataclass
class Report:
    """What the sections add to as they are rendered: the Markdown lines, the
    targets table (put near the top at the end), the latency CDF series and
    the SVG plots."""

    md: list[str]
    targets: list[Target] = field(default_factory=list)
    cdf: Cdf = field(default_factory=dict)
    plots: dict[str, str] = field(default_factory=dict)


def write(out_dir: Path, doc: dict[str, Any]) -> None:
    """Render ``report.md`` and the plots: one function per section, in order."""
    rep = Report(md=_header(doc))
    rep.md += _integrity_section(doc)
    _relay_section(doc, rep)
    _levers_section(doc, rep)
    _peak_sections(doc, rep)
    _peakrate_section(doc, rep)
    rep.md += _storm_sections(doc)
    _ramp_sections(doc, rep)
    _claims_sections(doc, rep)
    md, plots, targets, cdf = report_multinode.section(doc)
    rep.md += md
    rep.plots.update(plots)
    rep.targets += targets
    rep.cdf.update(cdf)
    rep.md += _noise_section(doc)
    rep.md += _gc_section(doc)
    _cdf_section(rep)
    _insert_targets(rep)
    for name, svg in rep.plots.items():
        (out_dir / name).write_text(svg)
    (out_dir / "report.md").write_text("\n".join(rep.md) + "\n")


def _header(doc: dict[str, Any]) -> list[str]:
    m = doc["machine"]
    return [
        f"# Load-test report — profile `{doc['profile']}`", "",
        f"- started {doc['started_at']}, finished {doc.get('finished_at', '–')}",
        f"- command: `{doc['command']}`",
        f"- machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, kernel {m['kernel']}; "
        f"Python {m['python']}, Node {m['node']}, aiohttp {m['aiohttp']}, python-socketio "
        f"{m['python_socketio']}, python-engineio {m['python_engineio']}",
        f"- pinning: server on core {m['pinning']['server_core']}, generator on core "
        f"{m['pinning']['generator_core']} (taskset)",
        (f"- measured commit {doc['measured_commit'][:12]} (`--from-head`: the servers ran from "
         "`git archive` of it)" if doc.get("measured_commit") else
         f"- git {m['git']}{' (uncommitted changes)' if m['git_dirty'] else ''}"),
        *[f"- merged from `{r['dir']}` (commit {str(r.get('measured_commit'))[:12]}, "
          f"load before `{r['load_before']}`)" for r in doc.get("merged_from", [])],
        f"- load before: `{doc['load_before']}`", f"- load after: `{doc.get('load_after', '–')}`",
        "",
        "Other work on the same machine shows up as noise: compare ratios within one run, "
        "not absolute figures across runs.", "",
    ]


def _e2e_text(e2e: dict[str, Any] | None) -> str:
    if not e2e:
        return "–"
    return (f"{e2e.get('verified', 0)}/{e2e.get('sent', 0)} decrypted, "
            f"{e2e.get('undecryptable', 0)} undecryptable, {e2e.get('gaps', 0)} gaps"
            + (f", errors {e2e['errors']}" if e2e.get("errors") else "")
            + (f", FAILED {e2e['failed']}" if e2e.get("failed") else ""))


def _integrity_row(s: dict[str, Any]) -> str:
    i = s.get("integrity") or {}
    errs = dict(s.get("errors") or {})
    c = s.get("counters") or {}
    for k in ("connect_failures", "unexpected_disconnects"):
        if c.get(k):
            errs[k] = c[k]
    label = (s.get("step") or {}).get("label", "?")
    fatal = f" **FATAL: {s['fatal']}**" if s.get("fatal") else ""
    return (f"| {label}{fatal} | {_f(i.get('sent'))} | {_f(i.get('received'))} | "
            f"{_f(i.get('lost'))} | {_f(i.get('duplicated'))} | "
            f"{_f(i.get('out_of_order'))}{_late(i)} | "
            f"{errs or 0} | {_f(i.get('redelivered_after_reconnect'))} | "
            f"{_f(i.get('undelivered_at_cutoff'))} | {_f(i.get('dropped_by_end'))} | "
            f"{_e2e_text(s.get('e2e_sample'))} |")


INTEGRITY_TITLE = "## Integrity (must be all zero)"


def _integrity_section(doc: dict[str, Any]) -> list[str]:
    return [INTEGRITY_TITLE, "",
            "| step | sent | received | lost | duplicated | out of order | errors | "
            "redelivered after reconnect (dropped by client) | undelivered at cut-off "
            "(overload backlog) | in flight at end (dropped by design) | PyNaCl sample |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            *[_integrity_row(s) for s in doc["steps"]],
            "", f"**Overall: {'PASS' if integrity_ok(doc) else 'FAIL'}**", ""]


def _relay_section(doc: dict[str, Any], rep: Report) -> None:
    relay = _steps(doc, "relay")
    if not relay:
        return
    lines, by_level = _relay_table(relay)
    rep.md += ["## Relay saturation and baselines (scenario 2)", "",
               "Conversations of one youth and one counsellor (capacity 3, so "
               "connections = youths + youths/3) on all three stacks, the same ~550-byte "
               "`send` frames (one 272-byte box), closed loop (each member sends again when "
               "its previous send is acknowledged), cumulative `delivered` every 16 boxes.", "",
               *lines, ""]
    _relay_plots(by_level, rep)
    rep.md += ["![throughput](throughput.svg)", "", "![rss](rss.svg)", ""]
    rep.targets += _relay_targets(by_level)
    rep.md += _relay_latency_section(by_level, rep.cdf)


def _relay_plots(by_level: dict[int, dict[str, Any]], rep: Report) -> None:
    series_tp: dict[str, list[tuple[float, float]]] = {}
    series_rss: dict[str, list[tuple[float, float]]] = {}
    for level, stacks in sorted(by_level.items()):
        for stack, s in stacks.items():
            r = _res(s)
            rate = (r.get("saturate") or {}).get("relayed_per_s")
            if rate:
                series_tp.setdefault(STACK_NAMES[stack], []).append((level, rate))
            rss = (r.get("rss_mb") or {}).get("paired")
            if rss:
                series_rss.setdefault(STACK_NAMES[stack], []).append((level, rss))
    rep.plots["throughput.svg"] = line_chart(
        "Relayed messages/s at saturation", series_tp, x_label="connections",
        y_label="msg/s", y_min=0)
    rep.plots["rss.svg"] = line_chart(
        "Server RSS with all conversations paired", series_rss, x_label="connections",
        y_label="RSS (MB)", y_min=0)


def _relay_targets(by_level: dict[int, dict[str, Any]]) -> list[Target]:
    targets: list[Target] = []
    for level, stacks in sorted(by_level.items()):
        bsat = _res(stacks.get("bare", {})).get("saturate", {})
        csat = _res(stacks.get("chat", {})).get("saturate", {})
        bare, chat = bsat.get("relayed_per_s"), csat.get("relayed_per_s")
        bn, cn = per_core(bsat), per_core(csat)
        if bare and chat:
            ratio = chat / bare
            nratio = cn / bn if cn and bn else ratio
            verdict = "meets aim" if min(ratio, nratio) >= AIM_RATIO else (
                "meets" if min(ratio, nratio) >= TARGET_RATIO else "MISSES")
            targets.append((f"saturation ≥ {TARGET_RATIO}× bare at {level:,} connections",
                            f"{ratio:.2f}× wall-clock, {nratio:.2f}× per server core",
                            verdict))
        rss = _res(stacks.get("chat", {})).get("rss_per_idle_youth_kb")
        if rss is not None:
            targets.append((f"RSS per idle youth connection ≤ {TARGET_RSS_KB:.0f} KB "
                            f"({level:,} connections)", f"{rss} KB",
                            "meets" if rss <= TARGET_RSS_KB else "MISSES"))
    return targets


def _relay_latency_section(by_level: dict[int, dict[str, Any]], cdf: Cdf) -> list[str]:
    lat_rows = []
    for level, stacks in sorted(by_level.items()):
        bare_p99 = _relay_latency(stacks.get("bare", {})).get("p99_ms")
        for stack in ("bare", "sio", "chat"):
            s = stacks.get(stack)
            lat = _relay_latency(s) if s else {}
            if not s or not lat:
                continue
            lat_rows.append(_relay_latency_row(f"{STACK_NAMES[stack]}, {level:,} conns", s,
                                               bare_p99))
            cdf[f"{STACK_NAMES[stack]} {level:,}"] = [tuple(p) for p in lat.get("cdf", [])]
    if not lat_rows:
        return []
    return ["### Relay latency at 0.5 msg/s per connection (the reference load: 1 msg/s "
            "per conversation pair)", "",
            *RELAY_LATENCY_HEAD, *lat_rows, ""]


def _levers_section(doc: dict[str, Any], rep: Report) -> None:
    levers = _steps(doc, "levers")
    if not levers:
        return
    rep.md += ["## Server levers (chatserver, 4 000 connections)", "",
               "Latency at an offered load chatserver sustains (see `offered`), then "
               "closed-loop saturation; one server start per variant.", "",
               "| variant | settings | offered msg/s | p50 ms | p99 ms | p99.9 ms | max ms | "
               "server CPU | saturation msg/s | RSS / paired youth |",
               "|---|---|---|---|---|---|---|---|---|---|"]
    for s in levers:
        r = _res(s)
        lat = ((r.get("latency") or {}).get("latency")) or {}
        settings = {k: v for k, v in (s.get("server_settings") or {}).items()
                    if not k.startswith("rate_")}
        rep.md.append(f"| {s['step']['variant']} | `{settings}` | "
                      f"{_f(r.get('latency_offered_per_s'))} | "
                      f"{_f(lat.get('p50_ms'), 2)} | {_f(lat.get('p99_ms'), 2)} | "
                      f"{_f(lat.get('p999_ms'), 2)} | {_f(lat.get('max_ms'), 1)} | "
                      f"{_f((r.get('latency') or {}).get('server_cpu_pct'))} % | "
                      f"{_f((r.get('saturate') or {}).get('relayed_per_s'))} | "
                      f"{_f(r.get('rss_per_paired_youth_kb'))} KB |")
        if lat.get("cdf"):
            rep.cdf[f"chat {s['step']['variant']}"] = [tuple(p) for p in lat["cdf"]]
    rep.md.append("")


def _peak_table(s: dict[str, Any]) -> list[str]:
    r = _res(s)
    lat = r.get("latency") or {}
    q = r.get("queue_updates") or {}
    return ["| measure | value |", "|---|---|",
            f"| window | {_f(r.get('window_secs'))} s |",
            f"| relayed msg/s | {_f(r.get('relayed_per_s'))} |",
            f"| relay latency p50 / p95 / p99 / p99.9 / max | {_f(lat.get('p50_ms'), 2)} / "
            f"{_f(lat.get('p95_ms'), 2)} / {_f(lat.get('p99_ms'), 2)} / "
            f"{_f(lat.get('p999_ms'), 2)} / {_f(lat.get('max_ms'), 1)} ms |",
            f"| claims in window; claim latency p50 / p99 | {_f(r.get('claims_in_window'))}; "
            f"{_f((r.get('claim') or {}).get('p50_ms'), 2)} / "
            f"{_f((r.get('claim') or {}).get('p99_ms'), 2)} ms |",
            "| start latency p50 / p99 (whole run) | "
            f"{_f((r.get('start') or {}).get('p50_ms'), 2)} / "
            f"{_f((r.get('start') or {}).get('p99_ms'), 2)} ms |",
            f"| queue-position pushes to youths | {_f(q.get('youth_events_per_s'))}/s, "
            f"{_f(q.get('youth_bytes_per_s'))} B/s |",
            f"| queue views to counsellors (whole views of them; resyncs) | "
            f"{_f(q.get('staff_events_per_s'))}/s ({_f(q.get('staff_snapshots_per_s'))}/s; "
            f"{_f(q.get('staff_resyncs'))}), {_f(q.get('staff_bytes_per_s'))} B/s |",
            f"| server CPU (one core = 100 %) | {_f(r.get('server_cpu_pct'))} % |",
            f"| server RSS: counsellors only / ramped / end | "
            f"{_f((r.get('rss_mb') or {}).get('staff_only'))} / "
            f"{_f((r.get('rss_mb') or {}).get('ramped'))} / "
            f"{_f((r.get('rss_mb') or {}).get('end'))} MB |",
            f"| errors | {s.get('errors') or 0} |",
            f"| expected refusals | {s.get('refusals') or 0} |", ""]


def _peak_sections(doc: dict[str, Any], rep: Report) -> None:
    for s in _steps(doc, "peak"):
        r = _res(s)
        lat = r.get("latency") or {}
        variant = s["step"].get("variant") or ""
        title = "## National evening peak (scenario 1)" + (
            f": lever `{variant}` (`{s['step'].get('server')}`)" if variant else "")
        rep.md += [title, "",
                   f"{_f(r.get('youths_target'))} youths kept connected by a Poisson stream "
                   f"({_f(r.get('arrivals'))} arrivals, {_f(r.get('abandoned_in_queue'))} gave up "
                   f"waiting, {_f(r.get('ended'))} conversations ended), "
                   f"{_f(r.get('counsellors'))} counsellors with capacity {r.get('capacity')}, "
                   f"{_f(r.get('connections_at_end'))} connections and "
                   f"{_f(r.get('active_conversations_at_end'))} active conversations at the end "
                   "of the window; each chatting member sends every 10–20 s (typing first 30 % "
                   "of the time).", "",
                   *_peak_table(s)]
        if lat.get("cdf"):
            rep.cdf["chatserver peak" + (f" {variant}" if variant else "")] = [
                tuple(p) for p in lat["cdf"]]
        if lat.get("p99_ms") is not None and not variant:
            rep.targets.append((f"peak p99 ≤ {TARGET_P99_MS:.0f} ms", f"{lat['p99_ms']} ms",
                                "meets" if lat["p99_ms"] <= TARGET_P99_MS else "MISSES"))
            rep.targets.append((f"peak p99.9 ≤ {TARGET_P999_MS:.0f} ms", f"{lat['p999_ms']} ms",
                                "meets" if lat["p999_ms"] <= TARGET_P999_MS else "MISSES"))


def _peakrate_section(doc: dict[str, Any], rep: Report) -> None:
    """The peak's relay rate on each stack: a bare floor under the peak's tail."""
    peakrate = _steps(doc, "peakrate")
    if not peakrate:
        return
    bare_pr = next((_relay_latency(s) for s in peakrate if s["step"]["stack"] == "bare"), {})
    rep.md += ["## The peak's relay rate on each stack (relay only)", "",
               "The peak's total message rate over as many 1:1 relay conversations "
               "(with no queue and no claims) as the peak has connections, near enough: "
               "the bare-aiohttp row is the floor (generator, loopback, scheduling) under "
               "the peak's tail in this run.", "", *RELAY_LATENCY_HEAD]
    for s in peakrate:
        lat = _relay_latency(s)
        conns = (s.get("plan") or {}).get("connections")
        name = f"{STACK_NAMES[s['step']['stack']]}, {_f(conns)} conns"
        rep.md.append(_relay_latency_row(name, s, bare_pr.get("p99_ms")))
        if lat.get("cdf"):
            rep.cdf[f"{name} at the peak's rate"] = [tuple(p) for p in lat["cdf"]]
    main_peak = next((_res(s).get("latency") or {} for s in _steps(doc, "peak")
                      if not s["step"].get("variant")), {})
    if main_peak.get("p99_ms") and bare_pr.get("p99_ms"):
        rep.md += ["", f"The peak's p99 ({_f(main_peak['p99_ms'], 2)} ms) is "
                   f"{main_peak['p99_ms'] / bare_pr['p99_ms']:.1f}× bare aiohttp's at its rate."]
    rep.md.append("")


def _storm_sections(doc: dict[str, Any]) -> list[str]:
    md: list[str] = []
    for s in _steps(doc, "storm") + _steps(doc, "storm10k"):
        r = _res(s)
        md += [f"## Reconnect storm (scenario 3): `{s['step']['label']}`", "",
               f"{_f(r.get('connections'))} connections in {_f(r.get('conversations'))} "
               "conversations, chatting; every client drops its transport at a random moment "
               "within 5 s and reconnects after a random pause of up to 5 s, then resumes.", "",
               "| measure | value |", "|---|---|",
               f"| conversations whole again | {_f(r.get('whole_again'))} of "
               f"{_f(r.get('conversations'))} |",
               f"| all whole after | {_f(r.get('all_whole_after_ms'))} ms from the first drop |",
               "| per conversation p50 / p99 | "
               f"{_f((r.get('whole_after') or {}).get('p50_ms'), 0)} / "
               f"{_f((r.get('whole_after') or {}).get('p99_ms'), 0)} ms |",
               f"| resume call p50 / p99 | {_f((r.get('resume_call') or {}).get('p50_ms'), 1)} / "
               f"{_f((r.get('resume_call') or {}).get('p99_ms'), 1)} ms |",
               f"| resume failures | {_f(r.get('resume_failures'))} |",
               f"| lost / duplicated | {_f((s.get('integrity') or {}).get('lost'))} / "
               f"{_f((s.get('integrity') or {}).get('duplicated'))} |", ""]
    return md


def _ramp_sections(doc: dict[str, Any], rep: Report) -> None:
    for s in _steps(doc, "ramp"):
        r = _res(s)
        rep.md += ["## Capacity ramp (scenario 4)", "",
                   "Connections added in steps (conversations of capacity-3 counsellors, every "
                   "member sending every 10–20 s); stop at p99 > 50 ms or the first error.", "",
                   "| connections | msg/s | p50 ms | p99 ms | p99.9 ms | max ms | server CPU | "
                   "RSS MB | "
                   "new errors |", "|---|---|---|---|---|---|---|---|---|"]
        pts99, pts999 = [], []
        for st in r.get("steps", []):
            lat = st.get("latency") or {}
            rep.md.append(f"| {_f(st.get('connections'))} | {_f(st.get('relayed_per_s'))} | "
                          f"{_f(lat.get('p50_ms'), 2)} | {_f(lat.get('p99_ms'), 2)} | "
                          f"{_f(lat.get('p999_ms'), 2)} | {_f(lat.get('max_ms'), 1)} | "
                          f"{_f(st.get('server_cpu_pct'))} % | {_f(st.get('rss_mb'))} | "
                          f"{_f(st.get('new_errors'))} |")
            pts99.append((st.get("connections"), lat.get("p99_ms")))
            pts999.append((st.get("connections"), lat.get("p999_ms")))
        rep.md += ["", f"Stopped: {r.get('stop_reason', '–')}.", "", "![ramp](ramp.svg)", ""]
        rep.plots["ramp.svg"] = line_chart("Capacity ramp: relay latency",
                                           {"p99": pts99, "p99.9": pts999},
                                           x_label="connections", y_label="ms", y_min=0,
                                           hlines={"50 ms": 50.0})


def _claims_sections(doc: dict[str, Any], rep: Report) -> None:
    for s in _steps(doc, "claims"):
        r = _res(s)
        rep.md += ["## Claim latency against queue length", "",
                   "One counsellor claims a random waiting youth, then takes the next, ends "
                   "both; the queue is refilled to its size after each round.", "",
                   "| waiting | claim p50 / p99 ms | take_next p50 / p99 ms | start p50 / p99 ms |",
                   "|---|---|---|---|"]
        c50, t50 = [], []
        for pt in r.get("curve", []):
            cl, tn, st = pt.get("claim") or {}, pt.get("take_next") or {}, pt.get("start") or {}
            rep.md.append(f"| {_f(pt.get('waiting'))} | "
                          f"{_f(cl.get('p50_ms'), 2)} / {_f(cl.get('p99_ms'), 2)} | "
                          f"{_f(tn.get('p50_ms'), 2)} / {_f(tn.get('p99_ms'), 2)} | "
                          f"{_f(st.get('p50_ms'), 2)} / {_f(st.get('p99_ms'), 2)} |")
            c50.append((pt.get("waiting"), cl.get("p50_ms")))
            t50.append((pt.get("waiting"), tn.get("p50_ms")))
        rep.plots["claims.svg"] = line_chart("Claim latency (p50) against waiting youths",
                                             {"claim": c50, "take_next": t50},
                                             x_label="waiting youths", y_label="ms", log_x=True,
                                             y_min=0)
        rep.md += ["", "![claims](claims.svg)", ""]
        rep.md += _queue_ops_table(s.get("queue_ops") or [])
        rep.targets += _claims_target(r.get("curve", []))


def _queue_ops_table(ops: list[dict[str, Any]]) -> list[str]:
    if not ops:
        return []
    return ["The queue's own operations, timed in-process (`loadtests/queue_bench.py`): "
            "what a claim costs the data structure, apart from the event loop's other "
            "work.", "",
            "| waiting | position µs | claim (remove + re-add) µs | take_next µs |",
            "|---|---|---|---|",
            *[f"| {o['waiting']:,} | {o['position_us']} | {o['claim_remove_add_us']} | "
              f"{o['take_next_us']} |" for o in ops], ""]


def _claims_target(curve: list[dict[str, Any]]) -> list[Target]:
    if len(curve) < 2:
        return []
    first = (curve[0].get("claim") or {}).get("p50_ms")
    last = (curve[-1].get("claim") or {}).get("p50_ms")
    if not (first and last):
        return []
    return [(f"claim latency flat from {curve[0]['waiting']:,} to "
             f"{curve[-1]['waiting']:,} waiting",
             f"p50 {first} → {last} ms", "meets" if last <= 3 * first + 1 else "MISSES")]


def _noise_section(doc: dict[str, Any]) -> list[str]:
    noise_rows = []
    for s in doc["steps"]:
        tl = [t for t in s.get("timeline") or [] if t.get("core_busy_pct")]
        if not tl:
            continue
        f0 = sum(max(0, t["core_busy_pct"][0] - t["server_cpu_pct"]) for t in tl) / len(tl)
        f1 = sum(max(0, t["core_busy_pct"][1] - t["gen_cpu_pct"]) for t in tl) / len(tl)
        ld = s.get("generator_loop_delay_ms") or {}
        label = (s.get("step") or {}).get("label", "?")
        noise_rows.append(f"| {label} | {f0:.0f} % | {f1:.0f} % | "
                          f"{_f(ld.get('p99'), 1)} | {_f(ld.get('max'), 0)} | "
                          f"`{(s.get('load_after') or '').split('average:')[-1].strip()}` |")
    if not noise_rows:
        return []
    return ["## Machine noise", "",
            "Other work on each core (core busy time minus the server's or the generator's "
            "own CPU, mean over the step) and the generator's event-loop delay: high values "
            "mean the latency figures of that step measure the machine as much as the "
            "server.", "",
            "| step | foreign load, server core | foreign load, generator core | "
            "generator loop delay p99 ms | max ms | load average after |",
            "|---|---|---|---|---|---|", *noise_rows, ""]


def _gc_row(s: dict[str, Any]) -> str | None:
    g = s.get("server_gc") or {}
    g2, g1, g0 = g.get("gen2") or {}, g.get("gen1") or {}, g.get("gen0") or {}
    if not g2 and not g1:
        return None
    return (f"| {(s.get('step') or {}).get('label', '?')} | {_f(g2.get('count'))} | "
            f"{_f(g2.get('max_ms'))} | {_f(g2.get('total_ms'))} | {_f(g2.get('over_50ms'))} | "
            f"{_f(g2.get('collected'))} | "
            f"{_f(g1.get('count'))} | {_f(g1.get('max_ms'))} | {_f(g1.get('total_ms'))} | "
            f"{_f(g0.get('count'))} | {_f(g0.get('max_ms'))} | {_f(g0.get('total_ms'))} | "
            f"{_f(g.get('frozen_objects_at_exit'))} | {_f(g.get('tracked_objects_at_exit'))} |")


def _gc_section(doc: dict[str, Any]) -> list[str]:
    gc_rows = [row for row in map(_gc_row, doc["steps"]) if row is not None]
    if not gc_rows:
        return []
    return ["## Cyclic GC in the server (recorded with gc.callbacks)", "",
            "Pause = CPU time of the collecting thread, so a collection descheduled by "
            "other work on the machine is not blamed for it.", "",
            "Generation 2 is every full collection (automatic, or the policy's periodic "
            "unfreeze-and-collect); its `collected` is the cyclic garbage it found.", "",
            "| step | gen-2 collections | gen-2 max ms | gen-2 total ms | gen-2 > 50 ms | "
            "gen-2 collected objects | gen-1 collections | gen-1 max ms | gen-1 total ms | "
            "gen-0 collections | gen-0 max ms | gen-0 total ms | frozen objects | "
            "tracked objects |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|", *gc_rows, ""]


def _cdf_section(rep: Report) -> None:
    if not rep.cdf:
        return
    rep.plots["latency_cdf.svg"] = line_chart(
        "Relay latency CDF", {k: [(x, y) for x, y in v] for k, v in rep.cdf.items()},
        x_label="latency (ms, log)", y_label="fraction ≤ x", log_x=True, y_min=0, y_max=1)
    rep.md += ["## Latency CDF", "", "![latency CDF](latency_cdf.svg)", ""]


def _insert_targets(rep: Report) -> None:
    """The targets table goes before the integrity table, once every section
    has added its targets."""
    if not rep.targets:
        return
    at = rep.md.index(INTEGRITY_TITLE)
    rep.md[at:at] = [
        "## Targets", "", "| target | measured | verdict |", "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rep.targets], ""]
