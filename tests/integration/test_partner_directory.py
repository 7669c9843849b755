"""The live partner directory over a real server: an operator changes it over
HTTP, every connected console gets ``partners_changed`` at once and finds the
change by searching again; counsellors cannot change it; every change is
audited as codes only; bad input is refused with a code and changes nothing;
a change by another writer (the CLI, another node) reaches the consoles
through the version check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from chatserver.client.reference import CallFailed, ReferenceClient
from chatserver.domain.audit import AuditLog
from chatserver.domain.clock import SystemClock
from chatserver.domain.partner_bank import PartnerBank
from chatserver.domain.referrals import load_directory
from chatserver.settings import REPO_ROOT
from chatserver.startup import CannotStart
from chatserver.storage.sqlite import SqliteStore
from tests.conftest import LiveServer, free_port, make_settings, start_server

API = "/staff/api/partners"
SHIPPED = REPO_ROOT / "config" / "partners.toml"


def new_entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "code": "tjejjour-solna", "name": "Tjejjouren Solna", "name_en": "Girls' shelter Solna",
        "kind": "shelter", "municipality": "Solna", "districts": [], "phone": "",
        "url": "", "hours": {"sv": "Tisdagar 18–21", "en": "Tuesdays 6–9 pm"},
        "notes": "Chatt för tjejer 12–25.", "words": {"sv": ["tjejchatt"], "en": ["girls chat"]},
    }
    entry.update(changes)
    return entry


class Operator:
    """An operator's browser: the session cookie, the CSRF token, our Origin."""

    def __init__(self, server: LiveServer, cookie: str, csrf: str) -> None:
        self.server, self.cookie, self.csrf = server, cookie, csrf

    async def call(self, method: str, path: str, body: Any = None, *,
                   csrf: bool = True) -> tuple[int, dict[str, Any]]:
        headers = {"Cookie": self.cookie, "Origin": self.server.origin}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        async with aiohttp.ClientSession() as http, http.request(
                method, self.server.url + path, headers=headers,
                data=None if body is None else json.dumps(body)) as resp:
            return resp.status, await resp.json()

    async def download(self, fmt: str) -> tuple[int, str, str]:
        async with aiohttp.ClientSession() as http, http.get(
                f"{self.server.url}{API}/export?format={fmt}",
                headers={"Cookie": self.cookie}) as resp:
            return resp.status, resp.headers.get("Content-Disposition", ""), await resp.text()


async def operator_of(server: LiveServer, role: str = "operator") -> Operator:
    login = await server.login(await server.add_staff(role=role))
    return Operator(server, login.cookie, login.csrf)


async def audit(server: LiveServer) -> list[tuple[str, str, dict[str, Any]]]:
    return [(e.actor, e.action, json.loads(e.detail))
            async for e in server.ctx.store.iter_audit()]


async def codes(client: ReferenceClient, query: str) -> list[str]:
    return [p["code"] for p in await client.partners(query)]


async def test_an_operators_change_reaches_every_console_at_once(
        live_server: LiveServer) -> None:
    server = live_server
    first = await server.staff_client()
    second = await server.staff_client(duty=False)
    ops = await operator_of(server)
    start = server.ctx.directory.version
    assert await codes(first, "tjejchatt") == []

    status, reply = await ops.call("POST", API, new_entry())
    assert status == 200 and reply["ok"] and reply["version"] == start + 1
    # Both consoles are told, without asking, and find the entry by searching.
    for console in (first, second):
        await console.wait_for(lambda c=console: c.partners_version == start + 1, 5)
    assert await codes(second, "tjejchatt") == ["tjejjour-solna"]
    assert await codes(second, "girls shelter solna") == ["tjejjour-solna"]
    found = (await first.partners("tjejjour solna"))[0]
    assert found["phone"] == "" and found["verified_at"] == ""

    status, reply = await ops.call("PUT", f"{API}/tjejjour-solna",
                                   {k: v for k, v in new_entry(phone="08-120 00 00").items()
                                    if k != "code"})
    assert status == 200 and reply["partner"]["phone"] == "08-120 00 00"
    status, reply = await ops.call("POST", f"{API}/tjejjour-solna/verify", {})
    assert status == 200 and reply["partner"]["verified_by"].startswith("operator")
    await first.wait_for(lambda: first.partners_version == start + 3, 5)
    found = (await first.partners("tjejjour solna"))[0]
    assert found["phone"] == "08-120 00 00" and found["verified_at"].endswith("Z")

    status, reply = await ops.call("POST", f"{API}/tjejjour-solna/retire", {"retired": True})
    assert status == 200
    await first.wait_for(lambda: first.partners_version == start + 4, 5)
    assert await codes(first, "tjejchatt") == []
    youth = await server.youth()
    conv = (await youth.start())["conversation"]
    await first.claim(conv)
    try:
        await first.refer(conv, "tjejjour-solna", send_card=False)
        raise AssertionError("a retired partner was referred to")
    except CallFailed as exc:
        assert exc.code == "unknown_partner"

    entries = [(actor, action, detail) for actor, action, detail in await audit(server)
               if action.startswith("partner")]
    seeded = len(load_directory(server.settings.partners_file).everything())
    assert entries.pop(0) == ("system", "partners_seeded", {"count": seeded})
    username = reply["partner"]["verified_by"]
    assert entries == [
        (username, "partner_added", {"partner": "tjejjour-solna", "role": "shelter"}),
        (username, "partner_edited", {"partner": "tjejjour-solna", "fields": "phone",
                                      "count": 1}),
        (username, "partner_verified", {"partner": "tjejjour-solna"}),
        (username, "partner_retired", {"partner": "tjejjour-solna"}),
    ]


async def test_counsellors_cannot_change_and_bad_input_changes_nothing(
        live_server: LiveServer) -> None:
    server = live_server
    counsellor = await server.login(await server.add_staff())
    as_counsellor = Operator(server, counsellor.cookie, counsellor.csrf)
    ops = await operator_of(server, role="admin")
    version = server.ctx.directory.version
    before = await audit(server)

    assert (await as_counsellor.call("POST", API, new_entry()))[0] == 403
    assert (await as_counsellor.call("GET", API, csrf=False))[0] == 403
    assert (await as_counsellor.call("POST", f"{API}/polisen/retire", {"retired": True}))[0] \
        == 403
    assert (await as_counsellor.download("csv"))[0] == 403
    refused = [
        (new_entry(code="polisen"), 409, "partner_exists", None),
        (new_entry(kind="lawyers"), 400, "bad_kind", "kind"),
        (new_entry(phone="08-XX XX"), 400, "bad_phone", "phone"),
        (new_entry(url="http://x.se/"), 400, "bad_partner", "url"),
        (new_entry(retired=True), 400, "bad_partner", "retired"),
        ({"code": "x-1"}, 400, "bad_partner", "name"),
    ]
    for body, status, code, field in refused:
        got_status, reply = await ops.call("POST", API, body)
        assert (got_status, reply["error"]) == (status, code), body
        assert reply.get("info", {}).get("field") == field
    assert (await ops.call("POST", API, new_entry(), csrf=False))[1]["error"] == "csrf_failed"
    assert (await ops.call("PUT", f"{API}/soc-gotham",
                           {k: v for k, v in new_entry().items() if k != "code"}))[0] == 404
    assert server.ctx.directory.version == version
    assert await audit(server) == before  # nothing happened, so nothing was recorded


async def test_the_operator_downloads_the_whole_directory(live_server: LiveServer) -> None:
    creds = await live_server.add_staff(role="operator")
    login = await live_server.login(creds)
    ops = Operator(live_server, login.cookie, login.csrf)
    ops_name = creds.username
    status, disposition, text = await ops.download("csv")
    assert status == 200 and disposition.startswith('attachment; filename="partners-')
    assert text.startswith("code,name,name_en,kind,") and "soc-botkyrka" in text
    status, disposition, text = await ops.download("toml")
    assert status == 200 and disposition.endswith('.toml"') and '[[partner]]' in text
    assert (await ops.call("GET", f"{API}/export?format=xlsx", csrf=False))[0] == 400
    # The staff notes leave the system in the file: each download is audited,
    # who and the format only; the refused one is not.
    entries = len(live_server.ctx.directory.everything())
    exported = [(a, d) for a, act, d in await audit(live_server) if act == "partners_exported"]
    assert exported == [(ops_name, {"format": "csv", "count": entries}),
                        (ops_name, {"format": "toml", "count": entries})]


async def test_a_change_by_another_writer_reaches_the_consoles(live_server: LiveServer) -> None:
    server = live_server
    console = await server.staff_client()
    start = server.ctx.directory.version
    # The CLI (another process) writes to the same database.
    async with SqliteStore.open(server.settings.database_path) as store:
        bank = PartnerBank(store, AuditLog(store, server.ctx.clock,
                                           server.settings.require_secrets().audit_key),
                           server.ctx.clock)
        await bank.open()
        await bank.add("cli", new_entry())
    # The server's periodic version check finds it and pushes to the console.
    await console.wait_for(lambda: console.partners_version == start + 1, 15)
    assert await codes(console, "tjejchatt") == ["tjejjour-solna"]


async def test_the_seed_is_read_only_into_an_empty_directory(tmp_path: Path) -> None:
    bad = tmp_path / "partners.toml"
    bad.write_text(SHIPPED.read_text("utf-8").replace('phone = "114 14"', 'phone = "114 14 ring"'),
                   encoding="utf-8")
    port = free_port()
    settings = make_settings(tmp_path / "var", port=port, public_origin=f"http://localhost:{port}",
                             partners_file=str(bad))
    # A bad seed stops the first start, naming the entry and the field.
    with pytest.raises(CannotStart, match=r"'polisen'.*'phone'"):
        await start_server(settings)
    # Once the database holds a directory, the file is not read again.
    async with SqliteStore.open(settings.database_path) as store:
        bank = PartnerBank(store, AuditLog(store, SystemClock(),
                                           settings.require_secrets().audit_key), SystemClock())
        await bank.open(lambda: load_directory(SHIPPED).everything())
    runner, server = await start_server(settings)
    try:
        police = server.ctx.directory.get("polisen")
        assert police is not None and police.phone == "114 14"
    finally:
        await runner.cleanup()
