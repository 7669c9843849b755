"""The README's staff command, run as written, in a real terminal.

A newcomer copies the command from README.md into a shell after ``make run``.
Here it runs the same way: the exact words from the README, from the
repository root, with a pseudo-terminal as its controlling terminal (so the
password prompts are getpass's real ones, with echo off), against a
temporary database. Only ``CHAT_DATA_DIR`` is set, to keep the test's
database apart.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shlex
import signal
import time
from pathlib import Path

from chatserver.__main__ import build_parser
from chatserver.domain import auth
from chatserver.settings import REPO_ROOT
from chatserver.startup import FIRST_STAFF_ARGS

PW = "correct horse battery staple"
FIRST_PROMPT = f"Password (at least {auth.MIN_PASSWORD_CHARS} characters): "
SECOND_PROMPT = "Password again: "
TERMINAL_BOUND_SECS = 60  # a generous bound on a loaded machine; we wait for output


def code_block_lines(path: Path) -> list[str]:
    """The lines inside a Markdown file's fenced code blocks."""
    inside, lines = False, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            inside = not inside
        elif inside:
            lines.append(line.strip())
    return lines


def staff_add_lines(path: Path) -> list[str]:
    """``… chatserver staff add …`` commands in a file's code blocks, without
    a trailing shell comment."""
    return [re.sub(r"\s+#.*$", "", line) for line in code_block_lines(path)
            if re.match(r"^\S*chatserver staff add ", line)]


def readme_staff_command() -> list[str]:
    """The one ``… staff add …`` command in README.md."""
    lines = staff_add_lines(REPO_ROOT / "README.md")
    assert len(lines) == 1, lines
    return shlex.split(lines[0])


def in_terminal(argv: list[str], env: dict[str, str], replies: dict[str, str],
                forbidden: tuple[str, ...] = ()) -> tuple[int, str]:
    """Run ``argv`` from the repository root with a pseudo-terminal as its
    controlling terminal, as someone at a shell would. Each prompt in
    ``replies`` is answered once, when it appears. If a ``forbidden`` text
    appears the program is stopped. Returns the exit code and everything the
    terminal showed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes the command
        try:
            os.chdir(REPO_ROOT)
            os.execve(argv[0], argv, env)  # noqa: S606  # what a shell does with the line
        finally:
            os._exit(127)
    shown, pending = b"", dict(replies)
    deadline = time.monotonic() + TERMINAL_BOUND_SECS
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"no end in sight; the terminal shows:\n{shown.decode()}")
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the program closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            text = shown.decode("utf-8", errors="replace")
            if any(f in text for f in forbidden):
                os.kill(pid, signal.SIGKILL)
                break
            for prompt in [p for p in pending if p in text]:
                os.write(fd, (pending.pop(prompt) + "\n").encode())
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown.decode("utf-8", errors="replace")


def newcomer_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env["CHAT_DATA_DIR"] = str(data_dir)
    return env


def test_the_readme_staff_command_works_as_written(tmp_path: Path) -> None:
    argv = readme_staff_command()
    assert argv[0] == ".venv/bin/chatserver"  # what `make run` leaves behind
    # The server's start-up line offers the same command.
    assert shlex.join(argv[1:]) == shlex.join(shlex.split(FIRST_STAFF_ARGS))

    code, shown = in_terminal(argv, newcomer_env(tmp_path / "var"),
                              {FIRST_PROMPT: PW, SECOND_PROMPT: PW})

    assert code == 0, shown
    username, alias = argv[3], argv[argv.index("--alias") + 1]
    assert f"added {username}: role counsellor, alias {alias!r}" in shown
    assert re.search(r"otpauth://totp/\S+secret=[A-Z2-7]+", shown), shown
    assert PW not in shown  # getpass turned echo off
    assert (tmp_path / "var" / "chatserver.sqlite3").exists()


def test_a_short_password_is_refused_before_it_is_asked_again(tmp_path: Path) -> None:
    argv = [".venv/bin/chatserver", "staff", "add", "bo", "--role", "counsellor",
            "--alias", "Bea"]

    code, shown = in_terminal(argv, newcomer_env(tmp_path / "var"), {FIRST_PROMPT: "too short"},
                              forbidden=(SECOND_PROMPT,))

    assert SECOND_PROMPT not in shown
    assert code == 1
    assert f"password must be at least {auth.MIN_PASSWORD_CHARS} characters" in shown
    assert "too short" not in shown
    assert not (tmp_path / "var" / "chatserver.sqlite3").exists()


def test_every_documented_staff_add_makes_a_valid_account() -> None:
    """Examples in README.md and docs/ pass the account rules (the alias is
    what youths see and must differ from the username, case ignored)."""
    found = 0
    for path in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]:
        for line in staff_add_lines(path):
            args = build_parser().parse_args(shlex.split(line)[1:])
            capacity = 3 if args.capacity is None else args.capacity
            auth.check_account_fields(args.username, args.role, args.alias, capacity)
            found += 1
    assert found >= 2  # the README and docs/operations.md
