from __future__ import annotations

import sqlite3
from pathlib import Path

import aiohttp

from tests.conftest import free_port, make_settings, start_server
from tests.helpers.waiting import eventually


async def test_metrics_on_loopback_port_aggregate_only(tmp_path: Path) -> None:
    port, mport = free_port(), free_port()
    settings = make_settings(tmp_path / "var", port=port, metrics_port=mport,
                             public_origin=f"http://localhost:{port}")
    runner, server = await start_server(settings)
    try:
        youth, counsellor, conv = await server.chat()
        await youth.send_text(conv, "hello")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{mport}/metrics") as resp:
                text = await resp.text()
            async with http.get(f"{server.url}/metrics") as main:
                assert main.status == 404  # never on the public port
        assert 'chat_conversations{state="active"} 1.0' in text
        assert "chat_counsellors_on_duty 1.0" in text
        assert "chat_messages_relayed_total 1.0" in text
        assert 'chat_connections{kind="staff"} 1.0' in text
        assert 'chat_connections{kind="youth"} 1.0' in text
        assert "chat_pending_handshakes 0.0" in text  # both joined their namespaces
        assert 'chat_handshakes_refused_total{reason="too_many_connections"} 0.0' in text
        assert "chat_binary_packets_refused_total 0.0" in text
        assert conv not in text and "Alias" not in text
        await youth.close()
        await counsellor.close()
    finally:
        await runner.cleanup()


async def test_audit_append_failures_are_counted(tmp_path: Path) -> None:
    """The chat goes on when an audit entry cannot be written; the counter is
    what an alert sees (deploy/prometheus/alerts.yml)."""
    port, mport = free_port(), free_port()
    settings = make_settings(tmp_path / "var", port=port, metrics_port=mport,
                             public_origin=f"http://localhost:{port}")
    runner, server = await start_server(settings)

    async def failures() -> str:
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{mport}/metrics") as resp:
            text = await resp.text()
        return next(line for line in text.splitlines()
                    if line.startswith("chatserver_audit_append_failures_total "))

    try:
        counsellor = await server.staff_client()  # duty_on is written
        assert await failures() == "chatserver_audit_append_failures_total 0.0"
        # A real write failure: the table is gone under the running server.
        con = sqlite3.connect(tmp_path / "var" / "chatserver.sqlite3")
        con.execute("ALTER TABLE audit RENAME TO audit_gone")
        con.commit()
        con.close()
        await counsellor.duty(False)  # duty_off cannot be written
        await eventually(lambda: server.ctx.audit_append_failures == 1, 30)
        assert await failures() == "chatserver_audit_append_failures_total 1.0"
        await counsellor.close()
    finally:
        await runner.cleanup()
