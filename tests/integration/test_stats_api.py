"""The statistics routes on a real server: who may read and write them, CSRF,
clear errors that change nothing, and the CLI giving the API's numbers
(chatserver/transport/stats_api.py, chatserver/cli/stats.py)."""

from __future__ import annotations

import csv
import io
import json
import time
from contextlib import aclosing
from typing import Any

import aiohttp

from chatserver.client.reference import CallFailed, StaffLogin
from chatserver.domain.stats import month_of
from tests.conftest import LiveServer, MakeServer
from tests.integration.test_cli import run

# The month a server running now counts in.
NOW_MONTH = month_of(time.time())


async def get(server: LiveServer, path: str, login: StaffLogin | None
              ) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    headers = {"Cookie": login.cookie} if login else {}
    async with aiohttp.ClientSession() as http, http.get(server.url + path,
                                                         headers=headers) as resp:
        body: Any = await resp.text()
        if resp.content_type == "application/json":
            body = json.loads(body)
        return resp.status, body, dict(resp.headers)


async def post_manual(server: LiveServer, login: StaffLogin | None, body: Any, *,
                      csrf: str | None = "from-login", origin: str | None = None
                      ) -> tuple[int, dict[str, Any]]:
    headers = {"Origin": origin or server.origin}
    if login is not None:
        headers["Cookie"] = login.cookie
        if csrf == "from-login":
            headers["X-CSRF-Token"] = login.csrf
        elif csrf is not None:
            headers["X-CSRF-Token"] = csrf
    async with aiohttp.ClientSession() as http, http.post(
            server.url + "/staff/api/stats/manual", json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def manual_rows(server: LiveServer) -> dict[tuple[str, str], int]:
    return await server.ctx.store.manual_counts_between("2000-01", "2999-12")


async def audit_actions(server: LiveServer, action: str) -> list[dict[str, Any]]:
    found = []
    async with aclosing(server.ctx.store.iter_audit()) as entries:
        async for e in entries:
            if e.action == action:
                found.append({"actor": e.actor, **json.loads(e.detail)})
    return found


async def test_only_operators_and_admins_may_read_or_write(live_server: LiveServer) -> None:
    counsellor = await live_server.login(await live_server.add_staff("counsellor"))
    q = f"?from={NOW_MONTH}&to={NOW_MONTH}"
    for path in ("/staff/api/stats" + q, "/staff/api/stats.csv" + q):
        assert (await get(live_server, path, None))[:2] == (
            401, {"ok": False, "error": "session_required"})
        assert (await get(live_server, path, counsellor))[:2] == (
            403, {"ok": False, "error": "not_allowed"})
    body = {"month": NOW_MONTH, "kind": "seminar", "count": 3}
    assert await post_manual(live_server, counsellor, body) == (
        403, {"ok": False, "error": "not_allowed"})
    assert await post_manual(live_server, None, body) == (
        401, {"ok": False, "error": "session_required"})
    assert await manual_rows(live_server) == {}
    for role in ("operator", "admin"):
        login = await live_server.login(await live_server.add_staff(role))
        status, reply, _ = await get(live_server, "/staff/api/stats" + q, login)
        assert status == 200 and reply["ok"] is True and reply["from"] == NOW_MONTH


async def test_manual_entry_needs_csrf_and_origin_and_bad_input_changes_nothing(
        live_server: LiveServer) -> None:
    operator = await live_server.login(await live_server.add_staff("operator"))
    good = {"month": "2026-03", "kind": "seminar", "count": 3}
    assert await post_manual(live_server, operator, good, csrf=None) == (
        403, {"ok": False, "error": "csrf_failed"})
    assert await post_manual(live_server, operator, good, csrf="x" * 43) == (
        403, {"ok": False, "error": "csrf_failed"})
    assert await post_manual(live_server, operator, good, origin="https://evil.example") == (
        403, {"ok": False, "error": "bad_origin"})
    for bad, code in [
        ({**good, "month": "2026-13"}, "bad_range"),
        ({**good, "month": "march"}, "bad_range"),
        ({**good, "kind": "lecture"}, "bad_payload"),
        ({**good, "count": -1}, "bad_payload"),
        ({**good, "count": "3"}, "bad_payload"),
        ({**good, "count": True}, "bad_payload"),
        ({**good, "count": 100_001}, "bad_payload"),
        ({**good, "extra": 1}, "bad_payload"),
        ({"month": "2026-03", "kind": "seminar"}, "bad_payload"),
        ([good], "bad_payload"),
    ]:
        assert await post_manual(live_server, operator, bad) == (
            400, {"ok": False, "error": code}), bad
    assert await manual_rows(live_server) == {}
    assert await audit_actions(live_server, "stats_manual") == []

    assert await post_manual(live_server, operator, good) == (
        200, {"ok": True, "month": "2026-03", "kind": "seminar", "count": 3})
    assert (await post_manual(live_server, operator, {**good, "count": 4}))[0] == 200
    assert await manual_rows(live_server) == {("2026-03", "seminar"): 4}
    username = (await live_server.ctx.store.get_by_id(
        (await live_server.ctx.store.list_staff())[-1].id)).username  # type: ignore[union-attr]
    assert await audit_actions(live_server, "stats_manual") == [
        {"actor": username, "month": "2026-03", "kind": "seminar", "new": 3},
        {"actor": username, "month": "2026-03", "kind": "seminar", "new": 4, "old": 3},
    ]


async def test_bad_ranges_are_refused_with_a_code(live_server: LiveServer) -> None:
    operator = await live_server.login(await live_server.add_staff("operator"))
    for query in ("", "?from=2026-01", "?from=2026-05&to=2026-04", "?from=2026-1&to=2026-02",
                  "?from=2016-01&to=2026-12", "?from=2026-01&to=2026-02%0A"):
        for path in ("/staff/api/stats", "/staff/api/stats.csv"):
            status, body, _ = await get(live_server, path + query, operator)
            assert (status, body) == (400, {"ok": False, "error": "bad_range"}), path + query


async def test_api_csv_and_cli_give_the_same_suppressed_numbers(
        live_server: LiveServer) -> None:
    counsellor = await live_server.staff_client()
    for i in range(7):
        youth = await live_server.youth()
        profile: dict[str, Any] = {"gender": "girl" if i < 6 else "boy",
                                   "municipality": "Stockholm"}
        if i < 5:
            profile["district"] = "Rinkeby-Kista"
        await youth.start(profile)
    assert counsellor is not None
    await live_server.ctx.stats.flush(live_server.ctx.store)
    operator = await live_server.login(await live_server.add_staff("operator"))
    assert (await post_manual(live_server, operator,
                              {"month": NOW_MONTH, "kind": "seminar", "count": 2}))[0] == 200

    q = f"?from={NOW_MONTH}&to={NOW_MONTH}"
    _, api, _ = await get(live_server, "/staff/api/stats" + q, operator)
    rows = {(r["dimension"], r["value"]): r["count"] for r in api["rows"]}
    assert rows[("contacts", "youth")] == 7
    assert rows[("municipality", "Stockholm")] == 7
    assert rows[("gender", "boy")] == "<5" and rows[("gender", "girl")] == ".."
    assert rows[("district", "unsaid")] == "<5"
    assert rows[("district", "Rinkeby-Kista")] == ".."  # 5, but 7 - 5 would reveal unsaid
    assert rows[("contact_kind", "first")] == 7
    assert rows[("outreach", "seminar")] == 2  # activities are shown as they are
    assert api["suppress_below"] == 5

    status, text, headers = await get(live_server, "/staff/api/stats.csv" + q, operator)
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert headers["Content-Disposition"] == (
        f'attachment; filename="statistics-{NOW_MONTH}-{NOW_MONTH}.csv"')
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == ["period", "dimension", "value", "count"]
    assert parsed[1:] == [[r["period"], r["dimension"], r["value"], str(r["count"])]
                          for r in api["rows"]]

    data_dir = live_server.settings.data_path
    cli_csv = run(data_dir, "stats", "export", "--from", NOW_MONTH, "--to", NOW_MONTH)
    assert cli_csv.returncode == 0, cli_csv.stderr
    assert cli_csv.stdout.replace("\r\n", "\n") == text.replace("\r\n", "\n")
    cli_json = run(data_dir, "stats", "export", "--from", NOW_MONTH, "--to", NOW_MONTH,
                   "--format", "json")
    assert cli_json.returncode == 0, cli_json.stderr
    assert json.loads(cli_json.stdout) == {k: v for k, v in api.items() if k != "ok"}
    bad = run(data_dir, "stats", "export", "--from", "2026-05", "--to", "2026-04")
    assert bad.returncode == 2 and "YYYY-MM" in bad.stderr and bad.stdout == ""
    # The CSV download and the two CLI exports left the system: audited; the
    # JSON reads and the refused range were not.
    operator_name = (await live_server.ctx.store.list_staff())[-1].username
    assert await audit_actions(live_server, "stats_exported") == [
        {"actor": operator_name, "month": NOW_MONTH, "count": 1, "format": "csv"},
        {"actor": "cli", "month": NOW_MONTH, "count": 1, "format": "csv"},
        {"actor": "cli", "month": NOW_MONTH, "count": 1, "format": "json"},
    ]


async def test_unmet_demand_while_closed_is_bounded_by_the_start_budget(
        make_server: MakeServer) -> None:
    # Each refused start is counted, so each takes from the address's start
    # budget, with a return code too (the code itself is never spent).
    server = await make_server(rate_starts_per_hour=3)
    codes = []
    for i in range(5):
        youth = await server.youth()
        try:
            await youth.start({"gender": "girl"}, passphrase="a b c d e f" if i % 2 else None)
        except CallFailed as exc:
            codes.append(exc.code)
    assert codes == ["nobody_on_duty"] * 3 + ["rate_limited"] * 2
    await server.ctx.stats.flush(server.ctx.store)
    counts = await server.ctx.store.get_counts(NOW_MONTH)
    assert sum(n for (d, _), n in counts.items() if d == "unmet_closed") == 3
    assert set(counts) == {k for k in counts if k[0] == "unmet_closed"}  # nothing else
