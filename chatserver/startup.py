"""What ``chatserver serve`` does before and at "ready": open the listening
sockets first, and tell the person who started it what to do next.

aiohttp's ``run_app`` runs the app's start-up (database, background jobs, the
"ready" line) and only then binds the port, so a port already in use showed
"ready" and then a traceback. Binding here, before start-up, makes a taken
port one clear line and a non-zero exit, and "ready" true when it is said.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import sys
from pathlib import Path

from chatserver.settings import Settings

# The example the start-up line and the README give: the username is the login
# (often the person's real name), the alias is the name youths see.
FIRST_STAFF_ARGS = 'staff add sara --role counsellor --alias "Mira"'


class CannotStart(Exception):
    """The server will not start; the message says why and what to do."""


class CannotListen(CannotStart):
    """The server could not open its listening socket; the message says why."""


def listen_sockets(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Bound, listening sockets for every address ``host`` resolves to (as
    asyncio would open them), or ``CannotListen`` with nothing left open."""
    where = f"{host or '*'}:{port}"
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise CannotListen(f"cannot listen on {where}: {exc.strerror or exc}") from None
    opened: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _name, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            opened.append(sock)
            # As asyncio does: a restart may bind while old connections linger
            # in TIME_WAIT; a port someone is listening on is still refused.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
    except OSError as exc:
        for sock in opened:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            why = ("the port is already in use (is another chatserver running? "
                   "choose another port with CHAT_PORT)")
        else:
            why = exc.strerror or str(exc)
        raise CannotListen(f"cannot listen on {where}: {why}") from None
    return opened


def cli_command() -> str:
    """How the person who started the server runs the command line: the
    console script beside this interpreter, relative when under the working
    directory (``.venv/bin/chatserver`` after ``make run``)."""
    script = Path(sys.executable).parent / "chatserver"
    if not script.exists():
        return "python -m chatserver"
    with contextlib.suppress(ValueError):
        return str(script.relative_to(Path.cwd()))
    return str(script)


def ready_message(settings: Settings, staff_accounts: int) -> str:
    """The start-up line: where to open the pages, and, while there is no staff
    account, the command that creates the first one."""
    origin = settings.public_origin
    text = f"chatserver ready: open {origin}/ (counsellor console: {origin}/console)"
    if staff_accounts == 0:
        text += (f"; no staff account yet, create the first with: "
                 f"{cli_command()} {FIRST_STAFF_ARGS}")
    return text
