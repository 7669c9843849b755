"""The start-up line and the listening sockets (chatserver/startup.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from chatserver.settings import load_settings
from chatserver.startup import FIRST_STAFF_ARGS, CannotListen, listen_sockets, ready_message


def test_the_ready_line_names_the_url_and_the_first_account_only_while_none_exists(
        tmp_path: Path) -> None:
    settings = load_settings(env={"CHAT_DATA_DIR": str(tmp_path), "CHAT_PORT": "9000"})
    first = ready_message(settings, staff_accounts=0)
    assert first.startswith("chatserver ready: open http://localhost:9000/ ")
    assert first.endswith(f"chatserver {FIRST_STAFF_ARGS}")
    later = ready_message(settings, staff_accounts=1)
    assert "http://localhost:9000/" in later and "staff add" not in later


def test_a_taken_port_is_refused_and_nothing_is_left_open() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CannotListen, match="already in use"):
            listen_sockets("127.0.0.1", port, backlog=8)
    # The port is free again: the refused attempt kept no socket bound to it.
    opened = listen_sockets("127.0.0.1", port, backlog=8)
    try:
        assert [s.getsockname()[1] for s in opened] == [port]
    finally:
        for s in opened:
            s.close()
