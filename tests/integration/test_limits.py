"""Floods get a clear error, are audited without flooding the audit log, and
never slow or break anyone else's conversation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from chatserver.client.reference import CallFailed, ReferenceClient
from tests.conftest import LiveServer, MakeServer, free_port, make_settings, start_server


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


# -- per-address limits behind a proxy ----------------------------------------------
# The test plays the TLS proxy: nginx's $proxy_add_x_forwarded_for appends the
# peer it saw to whatever X-Forwarded-For the client sent, so the last entry
# is the proxy's word and everything before it is the client's own writing.


async def start_from(server: LiveServer, forwarded_for: str) -> str:
    """Open a youth connection whose proxy header says ``forwarded_for``, and
    try to start: "ok" or the error code."""
    youth = ReferenceClient()
    await youth.connect(server.url, "/youth", headers={"X-Forwarded-For": forwarded_for})
    server.clients.append(youth)
    try:
        await youth.start()
    except CallFailed as exc:
        return exc.code
    return "ok"


async def proxied_server(make_server: MakeServer, **limits: int) -> LiveServer:
    server = await make_server(client_addr_header="X-Forwarded-For", trusted_proxy_hops=1,
                               **limits)
    await server.staff_client()  # someone on duty, so starts are accepted
    return server


async def test_rotating_addresses_inside_one_ipv6_64_does_not_escape_the_start_limit(
        make_server: MakeServer) -> None:
    server = await proxied_server(make_server, rate_starts_per_hour=3)
    # One subscriber's /64 offers 2^64 addresses; they are one client.
    same_64 = ["2001:db8:5:6::1", "2001:db8:5:6::2", "2001:db8:5:6:a1b2:c3d4:e5f6:1",
               "2001:DB8:5:6:ffff:ffff:ffff:fffe", "2001:db8:5:6::99"]
    results = [await start_from(server, address) for address in same_64]
    assert results == ["ok", "ok", "ok", "rate_limited", "rate_limited"]
    # The next /64 is somebody else, with a budget of its own.
    assert await start_from(server, "2001:db8:5:7::1") == "ok"
    assert len(server.ctx.chat.conversations) == 4


async def test_a_client_written_forwarded_for_entry_does_not_escape_the_start_limit(
        make_server: MakeServer) -> None:
    server = await proxied_server(make_server, rate_starts_per_hour=3)
    # The client writes a fresh address of its own each time; the proxy
    # appends the real one (plain, or IPv4-mapped from a dual-stack socket).
    real = ["203.0.113.7", "::ffff:203.0.113.7", "203.0.113.7", "::ffff:203.0.113.7"]
    results = [await start_from(server, f"198.51.100.{i}, {peer}")
               for i, peer in enumerate(real, start=1)]
    assert results == ["ok", "ok", "ok", "rate_limited"]
    # Garbage in the client's part changes nothing either.
    assert await start_from(server, "not an address, , 203.0.113.7") == "rate_limited"
    # Another real client, even one that writes the first one's address, is not limited.
    assert await start_from(server, "203.0.113.7, 203.0.113.8") == "ok"


async def login_with(server: LiveServer, username: str, forwarded_for: str) -> None:
    async with aiohttp.ClientSession() as http, http.post(
            server.url + "/staff/api/login",
            json={"username": username, "password": "wrong password 123", "totp": "000000"},
            headers={"Origin": server.origin, "X-Forwarded-For": forwarded_for}) as resp:
        reply = await resp.json()
    if not reply.get("ok"):
        raise CallFailed(str(reply.get("error")), reply.get("info"))


async def test_logins_per_address_hold_against_spoofed_entries_and_one_64(
        make_server: MakeServer) -> None:
    server = await make_server(client_addr_header="X-Forwarded-For", rate_logins_per_hour=3)
    headers = ["10.0.0.1, 2001:db8:9:9::1", "10.0.0.2, 2001:db8:9:9::2",
               "2001:db8:9:9::3", "10.0.0.4, 2001:db8:9:9:1:2:3:4"]
    codes = []
    for i, forwarded_for in enumerate(headers):
        try:
            await login_with(server, f"nobody{i}", forwarded_for)
        except CallFailed as exc:
            codes.append(exc.code)
    assert codes == ["bad_credentials"] * 3 + ["rate_limited"]
