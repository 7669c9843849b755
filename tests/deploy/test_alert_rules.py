"""deploy/prometheus/alerts.yml: every metric a rule names is one a real
server exposes on its metrics port, Prometheus's own ``promtool`` accepts the
file, and ``promtool test rules`` shows each alert firing when it should and
not when it should not (the opening-hours window above all)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.conftest import free_port, make_settings, start_server
from tests.helpers.deploy import DEPLOY, require_tool

RULES = DEPLOY / "prometheus" / "alerts.yml"
# Made by Prometheus itself for every scrape target, not by chatserver.
PROMETHEUS_OWN = {"up"}
PROMQL_WORDS = {"and", "or", "unless", "on", "ignoring", "by", "without", "bool", "offset",
                "group_left", "group_right", "max", "min", "sum", "avg", "count", "increase",
                "rate", "deriv", "hour", "day_of_week", "humanizeDuration"}


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _metrics_named(expr: str) -> set[str]:
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", " ", expr)  # matchers, ranges, strings
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {n for n in names if n not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhd]?", n)}


def test_every_rule_is_complete() -> None:
    rules = _rules()
    assert len({r["alert"] for r in rules}) == len(rules)
    for rule in rules:
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


async def test_every_metric_named_is_exposed_by_a_real_server(tmp_path: Path) -> None:
    named = set().union(*(_metrics_named(r["expr"]) for r in _rules())) - PROMETHEUS_OWN
    assert {"chat_queue_length", "chatserver_live_state_up",
            "chatserver_audit_append_failures_total"} <= named
    port, mport = free_port(), free_port()
    settings = make_settings(tmp_path / "var", port=port, metrics_port=mport,
                             public_origin=f"http://localhost:{port}")
    runner, _ = await start_server(settings)
    try:
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{mport}/metrics") as resp:
            text = await resp.text()
    finally:
        await runner.cleanup()
    exposed = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
               if line and not line.startswith("#")}
    assert named <= exposed, named - exposed


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = require_tool("promtool", "apt-get install prometheus; scripts/setup.sh --deploy")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120,
                          check=False)


def test_promtool_accepts_the_rules() -> None:
    out = _promtool("check", "rules", str(RULES))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in out.stdout


def _fired(alert: str, at: str, labels: dict[str, str] | None = None,
           value: str = "") -> dict[str, Any]:
    """The alert firing at ``at``, its annotations rendered as Prometheus
    renders them (``value``: the expression's value, as the template shows it)."""
    rule = next(r for r in _rules() if r["alert"] == alert)
    annotations = {}
    for key, text in rule["annotations"].items():
        text = text.replace("{{ $labels.instance }}", (labels or {}).get("instance", ""))
        text = re.sub(r"\{\{ \$value( \| humanizeDuration)? \}\}", value, text)
        annotations[key] = text
    return {"eval_time": at, "alertname": alert,
            "exp_alerts": [{"exp_labels": {**rule["labels"], **(labels or {})},
                            "exp_annotations": annotations}]}


def _quiet(alert: str, at: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": []}


def test_alerts_fire_when_they_should(tmp_path: Path) -> None:
    """Time 0 is Thursday 1 January 1970, 00:00 UTC; every series is one
    sample a minute for four days (to Sunday night)."""
    node = 'job="chatserver",instance="a"'
    day = 24 * 60
    series = [
        # Nobody on duty, ever: the opening hours decide when that is an alert.
        {"series": f"chat_counsellors_on_duty{{{node}}}", "values": f"0x{4 * day}"},
        {"series": f"chat_queue_length{{{node}}}", "values": f"0x600 30x{4 * day - 600}"},
        {"series": f"chat_longest_wait_seconds{{{node}}}", "values": f"0x600 1000x{4 * day - 600}"},
        {"series": f"chat_buffered_boxes{{{node}}}", "values": f"0x{4 * day}"},
        {"series": f"up{{{node}}}", "values": f"1x600 0x{4 * day - 600}"},
        {"series": f"chatserver_live_state_up{{{node}}}", "values": f"1x600 0x{4 * day - 600}"},
        # One failed audit append at 10:00.
        {"series": f"chatserver_audit_append_failures_total{{{node}}}",
         "values": f"0x600 1x{4 * day - 600}"},
    ]
    instance = {"job": "chatserver", "instance": "a"}
    checks = [
        # Opening hours: weekdays 08-19 UTC, weekends 11-16 UTC (15 minutes' grace).
        _quiet("ChatNoCounsellorOnDutyWhileOpen", "7h59m"),
        _quiet("ChatNoCounsellorOnDutyWhileOpen", "8h10m"),
        _fired("ChatNoCounsellorOnDutyWhileOpen", "8h16m"),
        _fired("ChatNoCounsellorOnDutyWhileOpen", "18h59m"),
        _quiet("ChatNoCounsellorOnDutyWhileOpen", "19h01m"),
        _quiet("ChatNoCounsellorOnDutyWhileOpen", "2d10h59m"),  # Saturday
        _fired("ChatNoCounsellorOnDutyWhileOpen", "2d12h"),
        _quiet("ChatNoCounsellorOnDutyWhileOpen", "2d16h01m"),
        _fired("ChatNoCounsellorOnDutyWhileOpen", "3d15h"),  # Sunday
        _quiet("ChatNoCounsellorOnDutyWhileOpen", "3d20h"),
        # The queue fills at 10:00.
        _quiet("ChatQueueLong", "10h05m"),
        _fired("ChatQueueLong", "10h11m", value="30"),
        _quiet("ChatYouthsWaitingNobodyOnDuty", "9h"),
        _fired("ChatYouthsWaitingNobodyOnDuty", "10h11m"),
        _fired("ChatLongestWaitHigh", "10h06m", value="16m 40s"),
        _quiet("ChatBufferedBoxesHigh", "12h"),
        # A node and its live state go at 10:00; one audit append fails then.
        _quiet("ChatNodeDown", "9h59m"),
        _fired("ChatNodeDown", "10h02m", instance),
        _fired("ChatLiveStateDown", "10h02m", instance),
        _fired("ChatAuditAppendFailing", "10h05m", instance),
        _quiet("ChatAuditAppendFailing", "10h30m"),
    ]
    spec = {"rule_files": [str(RULES)], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": series,
                       "alert_rule_test": checks}]}
    path = tmp_path / "alerts.test.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    out = _promtool("test", "rules", str(path))
    assert out.returncode == 0, out.stdout + out.stderr
