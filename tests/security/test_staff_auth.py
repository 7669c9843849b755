"""Staff authentication refusals over real HTTP and real socket.io
(docs/security-design.md, "Staff login"; docs/design/staff-auth.md; docs/protocol.md "HTTP").

Every test talks to a real server on a real port; the only direct access to
the server's internals is to read the audit log and to disable an account the
way the CLI does (``chatserver.domain.auth.set_account_disabled``).
"""

from __future__ import annotations

import asyncio
from http.cookies import SimpleCookie
from typing import Any

import aiohttp
import pytest
import socketio

from chatserver.client.reference import CallFailed, ReferenceClient
from chatserver.domain import auth
from chatserver.storage.base import AuditEntry
from tests.conftest import LiveServer, StaffCreds

# A public key libsodium can use (all-zero "A" * 43 is a low-order point: bad_payload).
USABLE_PK = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA"

SESSION_COOKIE = "__Host-session"
BAD_CREDENTIALS = {"ok": False, "error": "bad_credentials"}
FOREIGN = "https://evil.example"


# ------------------------------------------------------------------ helpers

Answer = tuple[int, dict[str, Any], aiohttp.ClientResponse]


async def post_login(server: LiveServer, body: Any, *, origin: str | None = "self",
                     cookie: str | None = None) -> Answer:
    headers: dict[str, str] = {}
    if origin is not None:
        headers["Origin"] = server.origin if origin == "self" else origin
    if cookie is not None:
        headers["Cookie"] = cookie
    async with aiohttp.ClientSession() as http, http.post(
            server.url + "/staff/api/login", json=body, headers=headers,
            allow_redirects=False) as resp:
        return resp.status, await resp.json(), resp


def login_body(creds: StaffCreds, *, password: str | None = None, totp: str | None = None,
               username: str | None = None) -> dict[str, str]:
    return {"username": username if username is not None else creds.username,
            "password": password if password is not None else creds.password,
            "totp": totp if totp is not None else creds.code()}


def other_code(code: str) -> str:
    """A well-formed code that is certainly not ``code``."""
    return f"{(int(code) + 1) % 10**6:06d}"


async def login_ok(server: LiveServer, creds: StaffCreds, code: str,
                   cookie: str | None = None) -> tuple[str, str]:
    status, reply, resp = await post_login(server, login_body(creds, totp=code), cookie=cookie)
    assert status == 200 and reply["ok"] is True, reply
    morsel = resp.cookies.get(SESSION_COOKIE)
    assert morsel is not None
    return f"{SESSION_COOKIE}={morsel.value}", reply["csrf"]


async def get_me(server: LiveServer, cookie: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(
            server.url + "/staff/api/me", headers={"Cookie": cookie}) as resp:
        return resp.status, await resp.json()


async def post_logout(server: LiveServer, cookie: str, csrf: str | None) -> tuple[int, Any]:
    headers = {"Origin": server.origin, "Cookie": cookie}
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    async with aiohttp.ClientSession() as http, http.post(
            server.url + "/staff/api/logout", headers=headers) as resp:
        return resp.status, await resp.json()


async def connect(server: LiveServer, namespace: str, headers: dict[str, str] | None = None,
                  ) -> ReferenceClient:
    client = ReferenceClient(call_timeout=3)
    server.clients.append(client)
    await client.connect(server.url, namespace, headers=headers)
    return client


async def refused_code(server: LiveServer, namespace: str,
                       headers: dict[str, str] | None = None) -> str:
    conns_before = len(server.ctx.conns)
    with pytest.raises(CallFailed) as refused:
        await connect(server, namespace, headers)
    assert len(server.ctx.conns) == conns_before  # nothing was registered
    return refused.value.code


async def audit_rows(server: LiveServer) -> list[AuditEntry]:
    return [row async for row in server.ctx.store.iter_audit()]


async def call_after_revocation(client: ReferenceClient, event: str,
                                data: dict[str, Any]) -> str:
    """The answer to a call on a connection whose session is gone: the error
    code, or "closed" if the server closed the connection instead of answering."""
    try:
        reply = await client.call(event, data, check=False)
    except (TimeoutError, CallFailed):
        await asyncio.sleep(0.2)
        assert not client.connected
        return "closed"
    assert reply.get("ok") is False, reply
    return str(reply["error"])


# ------------------------------------------------------------ bad credentials

async def test_wrong_password_wrong_totp_unknown_user_answer_the_same(
        live_server: LiveServer) -> None:
    creds = await live_server.add_staff()
    code = creds.code()
    attempts = [
        login_body(creds, password=creds.password + "x", totp=code),
        login_body(creds, totp=other_code(code)),
        login_body(creds, username="nobody-here", totp=code),
        login_body(creds, totp="12345"),  # malformed code
    ]
    answers = [await post_login(live_server, body) for body in attempts]

    assert [(status, reply) for status, reply, _ in answers] == [(401, BAD_CREDENTIALS)] * 4
    for _, _, resp in answers:
        assert "Set-Cookie" not in resp.headers
    # The right code was not consumed by the failures: it still logs in.
    await login_ok(live_server, creds, code)


async def test_replayed_totp_code_is_refused_after_logout(live_server: LiveServer) -> None:
    creds = await live_server.add_staff()
    code = creds.code()  # generated once: reused verbatim, so no step-boundary flake
    cookie, csrf = await login_ok(live_server, creds, code)
    assert (await post_logout(live_server, cookie, csrf))[0] == 200

    status, reply, resp = await post_login(live_server, login_body(creds, totp=code))

    assert (status, reply) == (401, BAD_CREDENTIALS)
    assert "Set-Cookie" not in resp.headers
    rows = await audit_rows(live_server)
    assert [r.action for r in rows if r.actor == creds.username][-1] == "totp_failed"


async def test_replayed_totp_code_is_refused_while_logged_in(live_server: LiveServer) -> None:
    creds = await live_server.add_staff()
    code = creds.code()
    cookie, _ = await login_ok(live_server, creds, code)

    status, reply, _ = await post_login(live_server, login_body(creds, totp=code))

    assert (status, reply) == (401, BAD_CREDENTIALS)
    assert (await get_me(live_server, cookie))[0] == 200  # the first login's session is untouched


async def test_lockout_after_max_failures_refuses_even_the_right_credentials(
        live_server: LiveServer) -> None:
    creds = await live_server.add_staff()
    limit = live_server.settings.login_max_failures
    wrong = login_body(creds, password="not the password at all")
    statuses = []
    for _ in range(limit - 1):
        status, reply, _ = await post_login(live_server, wrong)
        statuses.append(status)
        assert reply == BAD_CREDENTIALS
    assert statuses == [401] * (limit - 1)

    status, reply, _ = await post_login(live_server, wrong)  # the limit-th failure locks
    assert status == 429 and reply["error"] == "locked_out"
    assert isinstance(reply["info"]["retry_after_secs"], int)
    assert reply["info"]["retry_after_secs"] > 0

    status, reply, resp = await post_login(live_server, login_body(creds))
    assert status == 429 and reply["ok"] is False and reply["error"] == "locked_out"
    assert 0 < reply["info"]["retry_after_secs"] <= live_server.settings.lockout_base_secs
    assert "Set-Cookie" not in resp.headers
    assert not [r for r in await audit_rows(live_server) if r.action == "login_ok"]


async def test_unknown_usernames_lock_out_like_real_ones(live_server: LiveServer) -> None:
    # Otherwise "locked_out" would tell which usernames exist.
    limit = live_server.settings.login_max_failures
    body = {"username": "ghost", "password": "whatever it is", "totp": "123456"}
    answers = [await post_login(live_server, body) for _ in range(limit + 1)]
    assert [a[0] for a in answers] == [401] * (limit - 1) + [429, 429]
    assert answers[-1][1]["error"] == "locked_out"


async def test_a_concurrent_burst_of_wrong_passwords_gets_only_the_allowed_guesses(
        live_server: LiveServer) -> None:
    # 30 wrong passwords sent at once: the lock must hold for the whole burst,
    # not only for the requests that arrive after a failure was written. The
    # audit log says which attempts had their password checked ("password")
    # and which the lock refused before any hashing ("locked").
    creds = await live_server.add_staff()
    limit = live_server.settings.login_max_failures
    burst = 30  # within the per-address login budget and the hashing line
    body = login_body(creds, password="not the password at all")
    answers = await asyncio.gather(*(post_login(live_server, body) for _ in range(burst)))
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [401] * (limit - 1) + [429] * (burst - limit + 1)
    assert {reply.get("error") for status, reply, _ in answers if status == 429} == {"locked_out"}
    mine = [r.detail for r in await audit_rows(live_server)
            if r.actor == creds.username and r.action == "login_failed"]
    assert sum('"reason":"password"' in d for d in mine) == limit
    assert sum('"reason":"locked"' in d for d in mine) == burst - limit


@pytest.mark.parametrize("origin", [None, FOREIGN, "null", "http://localhost"],
                         ids=["missing", "foreign", "null", "other-port"])
async def test_login_needs_our_origin(live_server: LiveServer, origin: str | None) -> None:
    creds = await live_server.add_staff()
    code = creds.code()

    status, reply, resp = await post_login(live_server, login_body(creds, totp=code),
                                           origin=origin)

    assert (status, reply) == (403, {"ok": False, "error": "bad_origin"})
    assert "Set-Cookie" not in resp.headers
    assert len(live_server.ctx.sessions) == 0
    # Refused before any credential check: the code was not consumed.
    await login_ok(live_server, creds, code)


# ------------------------------------------------------------ socket.io connect

async def test_staff_connect_without_a_session_is_refused(live_server: LiveServer) -> None:
    assert await refused_code(live_server, "/staff") == "session_required"
    assert await refused_code(live_server, "/staff",
                              {"Cookie": f"{SESSION_COOKIE}=bogus-token-value"}) \
        == "session_required"
    assert await refused_code(live_server, "/staff", {"Cookie": f"{SESSION_COOKIE}="}) \
        == "session_required"
    assert await refused_code(live_server, "/staff",
                              {"Cookie": f"{SESSION_COOKIE}={'A' * 5000}"}) == "session_required"
    assert not live_server.ctx.chat.counsellors


async def test_staff_connect_with_a_foreign_origin_is_refused(live_server: LiveServer) -> None:
    creds = await live_server.add_staff()
    login = await live_server.login(creds)
    # docs/protocol.md: engine.io's CORS check refuses a foreign Origin at the
    # handshake (a bare HTTP 400, which the reference client calls "connect_failed").
    code = await refused_code(live_server, "/staff", {"Cookie": login.cookie, "Origin": FOREIGN})
    assert code == "connect_failed"
    assert not live_server.ctx.chat.counsellors
    # The same cookie from our own origin works: the refusal was the origin.
    client = await connect(live_server, "/staff", {"Cookie": login.cookie})
    assert client.connected


async def test_staff_connect_without_origin_is_refused(live_server: LiveServer) -> None:
    # The reference client always sends an Origin; a raw socket.io client need not.
    creds = await live_server.add_staff()
    login = await live_server.login(creds)
    errors: list[Any] = []
    sio = socketio.AsyncClient(reconnection=False)
    sio.on("connect_error", errors.append, namespace="/staff")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(live_server.url, headers={"Cookie": login.cookie},
                          transports=["websocket"], namespaces=["/staff"], wait_timeout=3)
    await sio.disconnect()
    assert errors == [{"message": "bad_origin"}]
    assert not live_server.ctx.chat.counsellors


@pytest.mark.parametrize("origin", [FOREIGN, "null"])
async def test_youth_connect_with_a_foreign_origin_is_refused(
        live_server: LiveServer, origin: str) -> None:
    assert await refused_code(live_server, "/youth", {"Origin": origin}) == "connect_failed"


# ------------------------------------------------------------ the session cookie

async def test_login_cookie_attributes(live_server: LiveServer) -> None:
    creds = await live_server.add_staff()
    status, reply, resp = await post_login(live_server, login_body(creds))
    assert status == 200 and reply["ok"] is True
    assert set(reply) >= {"ok", "csrf", "role", "alias"}
    assert reply["role"] == "counsellor" and reply["alias"] != creds.username

    raw = resp.headers.getall("Set-Cookie")
    assert len(raw) == 1
    jar = SimpleCookie(raw[0])
    assert list(jar) == [SESSION_COOKIE]
    morsel = jar[SESSION_COOKIE]
    assert len(morsel.value) >= 40  # 32 random bytes, base64url
    assert morsel["secure"] is True
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Strict"
    assert morsel["path"] == "/"
    assert morsel["domain"] == ""  # __Host- cookies must not carry a Domain
    attrs = {part.strip().split("=")[0].lower() for part in raw[0].split(";")[1:]}
    assert {"secure", "httponly", "samesite", "path"} <= attrs and "domain" not in attrs
    assert reply["csrf"] != morsel.value


async def test_login_rotates_the_session(live_server: LiveServer) -> None:
    creds = await live_server.add_staff()
    old_cookie, _ = await login_ok(live_server, creds, creds.code())

    # A second login presenting the old cookie (next step's code: the first was used)
    new_cookie, _ = await login_ok(live_server, creds, creds.code(1), cookie=old_cookie)

    assert new_cookie != old_cookie
    assert await refused_code(live_server, "/staff", {"Cookie": old_cookie}) == "session_required"
    assert (await get_me(live_server, old_cookie))[0] == 401
    assert (await get_me(live_server, new_cookie))[0] == 200
    client = await connect(live_server, "/staff", {"Cookie": new_cookie})
    assert (await client.duty(True))["on"] is True


async def test_logout_needs_the_csrf_token(live_server: LiveServer) -> None:
    creds = await live_server.add_staff()
    cookie, csrf = await login_ok(live_server, creds, creds.code())
    client = await connect(live_server, "/staff", {"Cookie": cookie})
    assert (await client.duty(True))["ok"] is True

    for token in (None, "", csrf[:-1], csrf + "x", "x" * 5000):
        status, reply = await post_logout(live_server, cookie, token)
        assert (status, reply) == (403, {"ok": False, "error": "csrf_failed"}), token
    # The session survived every refusal.
    status, me = await get_me(live_server, cookie)
    assert status == 200 and me["csrf"] == csrf
    assert (await client.duty(False))["on"] is False

    assert await post_logout(live_server, cookie, csrf) == (200, {"ok": True})

    assert (await get_me(live_server, cookie))[0] == 401
    assert await refused_code(live_server, "/staff", {"Cookie": cookie}) == "session_required"
    # The socket that was already open stops working at its next event.
    assert await call_after_revocation(client, "duty", {"on": True}) in (
        "session_required", "closed")
    counsellor = next(iter(live_server.ctx.chat.counsellors.values()))
    assert counsellor.on_duty is False
    # And logging out twice is refused, not an error.
    assert (await post_logout(live_server, cookie, csrf))[0] == 401


async def test_disabled_account_session_stops_working(live_server: LiveServer) -> None:
    # Regression (found by this suite): StaffNamespace.before() re-checked only
    # that the session existed, not that the account was still enabled, and
    # set_account_disabled cannot reach the running server's sessions. A
    # disabled counsellor's open console kept working (duty, claim, send) until
    # the socket dropped; only new connects and /me refused.
    creds = await live_server.add_staff()
    login = await live_server.login(creds)
    client = await connect(live_server, "/staff", {"Cookie": login.cookie})
    assert (await client.duty(True))["ok"] is True
    youth = await live_server.youth()
    conv = (await youth.start())["conversation"]

    await auth.set_account_disabled(creds.username, True, actor="test",
                                    store=live_server.ctx.store, audit=live_server.ctx.audit)

    assert (await get_me(live_server, login.cookie))[0] == 401
    assert await refused_code(live_server, "/staff", {"Cookie": login.cookie}) \
        == "session_required"
    # The open console must not take a youth's conversation any more.
    answer = await call_after_revocation(client, "claim",
                                         {"conversation": conv, "kx_pk": USABLE_PK})
    assert answer in ("session_required", "closed")
    assert live_server.ctx.chat.queue.position(conv) == 1


async def test_disabled_account_idle_console_is_closed_by_the_sweep(
        live_server: LiveServer) -> None:
    # Relay events skip the per-event account read (docs/performance.md), so
    # the app's periodic sweep must close a disabled account's consoles even
    # when they send nothing — and leave everyone else's alone.
    creds = await live_server.add_staff()
    other = await live_server.staff_client()
    login = await live_server.login(creds)
    client = await connect(live_server, "/staff", {"Cookie": login.cookie})
    assert (await client.duty(True))["ok"] is True

    await auth.set_account_disabled(creds.username, True, actor="test",
                                    store=live_server.ctx.store, audit=live_server.ctx.audit)
    recheck = live_server.settings.staff_recheck_secs
    for _ in range(int((10 * recheck + 2) / 0.1)):
        if not client.connected:
            break
        await asyncio.sleep(0.1)
    assert not client.connected
    assert (await get_me(live_server, login.cookie))[0] == 401  # sessions revoked
    assert other.connected and (await other.call("colleagues", {}))["ok"] is True


# ------------------------------------------------------------ roles

async def test_operator_cannot_take_duty_or_claim(live_server: LiveServer) -> None:
    counsellor = await live_server.staff_client()  # on duty, so a youth can queue
    youth = await live_server.youth()
    conv = (await youth.start())["conversation"]
    operator = await live_server.staff_client(await live_server.add_staff(role="operator"),
                                              duty=False)

    for event, payload in [("duty", {"on": True}),
                           ("claim", {"conversation": conv, "kx_pk": USABLE_PK}),
                           ("take_next", {"kx_pk": USABLE_PK})]:
        reply = await operator.call(event, payload, check=False)
        assert reply == {"ok": False, "error": "not_allowed"}, event

    assert live_server.ctx.chat.queue.position(conv) == 1  # still waiting, unclaimed
    assert len(live_server.ctx.chat.conversations[conv].members) == 1
    # The counsellor can still claim it: the refusals changed nothing.
    assert (await counsellor.claim(conv))["state"] == "active"


async def test_counsellor_cannot_watch_ops(live_server: LiveServer) -> None:
    counsellor = await live_server.staff_client()
    reply = await counsellor.call("ops_watch", {"on": True}, check=False)
    assert reply == {"ok": False, "error": "not_allowed"}
    assert not live_server.ctx.ops_watchers

    operator = await live_server.staff_client(await live_server.add_staff(role="operator"),
                                              duty=False)
    assert (await operator.call("ops_watch", {"on": True})) == {"ok": True}
    await operator.wait_for(lambda: bool(operator.ops), 5)
    assert "queue_length" in operator.ops and not counsellor.ops


# ------------------------------------------------------------ the audit log

async def test_logins_are_audited_without_password_or_code(live_server: LiveServer) -> None:
    creds = await live_server.add_staff()
    code = creds.code()
    wrong_code = other_code(code)
    unknown_name = "mistyped-real-name"
    await post_login(live_server, login_body(creds, password="Wrong-Password-42!", totp=code))
    await post_login(live_server, login_body(creds, totp=wrong_code))
    await post_login(live_server, login_body(creds, username=unknown_name, totp=code))
    await login_ok(live_server, creds, code)
    await post_login(live_server, login_body(creds, totp=code))  # replay

    rows = await audit_rows(live_server)
    mine = [(r.actor, r.action) for r in rows if r.action in
            ("login_ok", "login_failed", "totp_failed")]
    assert (creds.username, "login_failed") in mine
    assert (creds.username, "totp_failed") in mine
    assert (creds.username, "login_ok") in mine
    assert [a for _, a in mine].count("login_failed") == 2  # wrong password, unknown user
    assert [a for _, a in mine].count("totp_failed") == 2  # wrong code, replay

    secrets = [creds.password, "Wrong-Password-42!", code, wrong_code, unknown_name, creds.seed]
    for row in rows:
        text = " ".join(str(v) for v in (row.actor, row.action, row.conversation, row.detail))
        for secret in secrets:
            assert secret not in text, f"audit row {row.seq} ({row.action}) leaks a secret"
