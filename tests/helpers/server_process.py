"""A real ``chatserver`` process, started the way an operator starts it: its
staff added through the CLI, ``chatserver serve`` in a subprocess, ready
when /readyz answers, stopped with SIGINT (a clean shutdown, so its files are
complete when a test reads them)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import pyotp

from chatserver.settings import REPO_ROOT

CHATSERVER = (sys.executable, "-m", "chatserver")
# Straight to localhost, whatever proxy the environment names.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def add_staff(env: Mapping[str, str], username: str, password: str, *, alias: str,
              role: str = "counsellor") -> str:
    """``chatserver staff add`` with the password on stdin. Returns the TOTP
    secret from the otpauth:// URI it prints."""
    out = subprocess.run(
        [*CHATSERVER, "staff", "add", username, "--role", role, "--alias", alias,
         "--password-stdin"],
        input=password + "\n", env=dict(env), capture_output=True, text=True, timeout=60,
        check=True, cwd=REPO_ROOT).stdout
    uri = next(w for w in out.split() if w.startswith("otpauth://"))
    return str(pyotp.parse_uri(uri).secret)


def serve(env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``chatserver serve``; stdout and stderr go to ``log_path``."""
    with log_path.open("wb") as log:
        return subprocess.Popen([*CHATSERVER, "serve"], env=dict(env), stdout=log,
                                stderr=subprocess.STDOUT, cwd=REPO_ROOT)


def wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: Path,
               secs: float = 60.0) -> None:
    """Poll ``/readyz`` (the database answers) until it says 200. Fails at once,
    with the end of the log, if the process exits; the deadline only bounds a
    hang, a loaded machine just takes longer to get here."""
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"chatserver exited: {log_path.read_text()[-2000:]}")
        try:
            with _DIRECT.open(url + "/readyz", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:  # not listening yet, or 503 until the database answers
            pass
        time.sleep(0.1)
    raise AssertionError("chatserver did not become ready")


def stop(proc: subprocess.Popen[bytes], secs: float = 15.0) -> None:
    """SIGINT, as Ctrl-C would; killed (and the test failed) if it does not exit."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=secs)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise AssertionError("chatserver did not stop on SIGINT") from None


def terminate(*procs: subprocess.Popen[bytes], secs: float = 15.0) -> None:
    """SIGTERM to each (a Redis, a Sentinel, HAProxy, a server under test),
    then SIGKILL whatever has not exited within ``secs``."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(secs)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
