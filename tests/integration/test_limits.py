"""Floods get a clear error, are audited without flooding the audit log, and
never slow or break anyone else's conversation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chatserver.client.reference import CallFailed
from tests.conftest import LiveServer, free_port, make_settings, start_server


@pytest.fixture
async def tight_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    port = free_port()
    settings = make_settings(tmp_path / "var", port=port, public_origin=f"http://localhost:{port}",
                             rate_send_per_min=60, rate_send_burst=5,
                             rate_other_per_min=60, rate_other_burst=10,
                             rate_starts_per_hour=3)
    runner, server = await start_server(settings)
    try:
        yield server
    finally:
        for client in server.clients:
            await client.close()
        await runner.cleanup()


async def audit_actions(server: LiveServer) -> list[str]:
    return [entry.action async for entry in server.ctx.store.iter_audit()]


async def test_send_flood_is_limited_and_neighbour_unaffected(tight_server: LiveServer) -> None:
    server = tight_server
    counsellor = await server.staff_client()
    flooder, neighbour = await server.youth(), await server.youth()
    c1 = (await flooder.start())["conversation"]
    c2 = (await neighbour.start())["conversation"]
    await counsellor.claim(c1)
    await counsellor.claim(c2)
    await flooder.wait_for(lambda: flooder.conversations[c1].epoch == 1, 5)
    await neighbour.wait_for(lambda: neighbour.conversations[c2].epoch == 1, 5)

    codes = []
    for i in range(12):
        try:
            await flooder.send_text(c1, f"flood {i}")
            codes.append("ok")
        except CallFailed as exc:
            codes.append(exc.code)
            assert exc.info and exc.info["retry_after_secs"] >= 1
    assert codes[:5] == ["ok"] * 5 and "rate_limited" in codes

    # The neighbour's conversation is untouched.
    await neighbour.send_text(c2, "still here")
    texts = [(await counsellor.next_message(5)).text for _ in range(6)]
    assert texts == [f"flood {i}" for i in range(5)] + ["still here"]
    actions = await audit_actions(server)
    assert actions.count("rate_limited") == 1  # once a minute per connection, not per event


async def test_starts_per_client_address_are_limited(tight_server: LiveServer) -> None:
    server = tight_server
    await server.staff_client()
    results = []
    for _ in range(4):
        youth = await server.youth()
        try:
            await youth.start()
            results.append("ok")
        except CallFailed as exc:
            results.append(exc.code)
    assert results == ["ok", "ok", "ok", "rate_limited"]
    assert len(server.ctx.chat.conversations) == 3  # the refused start kept nothing


async def test_oversized_frame_closes_only_that_connection(live_server: LiveServer) -> None:
    counsellor = await live_server.staff_client()
    youth, other = await live_server.youth(), await live_server.youth()
    await other.start()
    conv = (await youth.start())["conversation"]
    huge = "A" * (live_server.settings.max_event_bytes + 1000)
    youth.call_timeout = 2.0  # the server closes the transport instead of answering
    with pytest.raises((TimeoutError, CallFailed)):
        await youth.call("typing", {"conversation": conv, "active": huge})
    await asyncio.sleep(0.2)
    assert not youth.connected
    assert other.connected and (await other.status())["open"] is True
    assert counsellor.connected


async def test_idle_staff_socket_closes_when_its_session_expires(tmp_path: Path) -> None:
    port = free_port()
    settings = make_settings(tmp_path / "var", port=port, public_origin=f"http://localhost:{port}",
                             session_idle_secs=2, session_absolute_secs=60)
    runner, server = await start_server(settings)
    try:
        staff = await server.staff_client(duty=False)
        assert staff.connected
        for _ in range(60):  # no events: the session idles out, the server closes the socket
            if not staff.connected:
                break
            await asyncio.sleep(0.1)
        assert not staff.connected
    finally:
        for client in server.clients:
            await client.close()
        await runner.cleanup()


async def test_logins_per_address_are_limited(tmp_path: Path) -> None:
    from chatserver.client.reference import staff_login

    port = free_port()
    settings = make_settings(tmp_path / "var", port=port, public_origin=f"http://localhost:{port}",
                             rate_logins_per_hour=3)
    runner, server = await start_server(settings)
    try:
        codes = []
        for i in range(4):
            try:
                await staff_login(server.url, f"nobody{i}", "wrong password 123", "000000")
            except CallFailed as exc:
                codes.append(exc.code)
        assert codes == ["bad_credentials"] * 3 + ["rate_limited"]
    finally:
        await runner.cleanup()
