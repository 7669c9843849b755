"""The staff-work routes on a real server (chatserver/transport/audit_api.py):
operators and admins only, filters and summaries of real staff actions, the
CSV exports audited, clear errors for bad input, and the chain's state."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime

from tests.conftest import LiveServer
from tests.integration.test_stats_api import audit_actions, get

TODAY = datetime.fromtimestamp(time.time(), UTC).date().isoformat()
Q = f"?from={TODAY}&to={TODAY}"


async def test_only_operators_and_admins_may_read_the_staff_work(
        live_server: LiveServer) -> None:
    counsellor = await live_server.login(await live_server.add_staff("counsellor"))
    for path in ("/staff/api/worklog" + Q, "/staff/api/worklog.csv" + Q,
                 "/staff/api/worklog/summary" + Q, "/staff/api/worklog/summary.csv" + Q,
                 "/staff/api/worklog/verify"):
        assert (await get(live_server, path, None))[:2] == (
            401, {"ok": False, "error": "session_required"})
        assert (await get(live_server, path, counsellor))[:2] == (
            403, {"ok": False, "error": "not_allowed"})
    assert await audit_actions(live_server, "worklog_exported") == []


async def test_filters_summaries_exports_and_verify(live_server: LiveServer) -> None:
    _, counsellor, _ = await live_server.chat()  # a counsellor on duty claims
    await counsellor.duty(False)
    name = "counsellor1"  # LiveServer.add_staff's first account
    operator = await live_server.login(await live_server.add_staff("operator"))

    status, body, _ = await get(live_server, f"/staff/api/worklog{Q}&actor={name}", operator)
    assert status == 200 and body["total"] >= 4
    assert {e["actor"] for e in body["entries"]} == {name}
    actions = [e["action"] for e in body["entries"]]
    assert actions[:3] == ["duty_off", "claim", "duty_on"]  # newest first
    assert name in body["actors"] and "claim" in body["actions"]
    claims = (await get(live_server, f"/staff/api/worklog{Q}&action=claim", operator))[1]
    assert [(e["actor"], e["action"]) for e in claims["entries"]] == [(name, "claim")]
    assert claims["entries"][0]["conversation"].startswith("c-")

    status, body, _ = await get(live_server, "/staff/api/worklog/summary" + Q, operator)
    row = next(r for r in body["rows"] if r["actor"] == name)
    assert (row["claims"], row["transfers_offered"], row["referrals_total"]) == (1, 0, 0)
    assert row["duty_hours"] >= 0

    status, text, headers = await get(live_server, "/staff/api/worklog/summary.csv" + Q,
                                      operator)
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert "attachment" in headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["staff", "duty_hours", "claims"]
    assert [r[2] for r in rows if r[0] == name] == ["1"]
    status, text, _ = await get(live_server, f"/staff/api/worklog.csv{Q}&action=claim",
                                operator)
    assert text.splitlines()[0] == "seq,at,actor,action,conversation,detail"
    assert len(text.splitlines()) == 2 and f",{name},claim," in text
    exported = await audit_actions(live_server, "worklog_exported")
    assert [(e["kind"], e["count"]) for e in exported] == [("summary", len(rows) - 1),
                                                          ("entries", 1)]

    status, body, _ = await get(live_server, "/staff/api/worklog/verify", operator)
    assert status == 200 and body["status"] == "ok" and body["entries"] > 5

    # Bad input: a clear code, nothing exported, nothing audited.
    for path in (f".csv?from={TODAY}&to=2000-01-01", ".csv?from=yesterday&to=today",
                 f".csv{Q}&actor=Robert%20Tables", f"{Q}&page=-1", f"/summary.csv{Q[:-1]}"):
        assert (await get(live_server, "/staff/api/worklog" + path, operator))[:2] == (
            400, {"ok": False, "error": "bad_range"})
    assert len(await audit_actions(live_server, "worklog_exported")) == 2
