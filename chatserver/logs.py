"""Logging that carries no content, secret or address at any level, keeps one
record to one line, and that no client can flood.

Every line is written by one handler, ``SafeHandler``, which ``configure``
installs on the root logger. The guards sit on that handler, not only on
loggers, so they hold for every logger: a library's child logger, a logger
created later and Python's warnings (routed into logging) included
(docs/threat-model.md, promises 1 and 2).

1. ``Guard`` decides what a record may keep.
   - Our own loggers (``chatserver.*``): the message with its values, through
     ``redact``. Our code logs no content, secret or address; ``redact`` is the
     net under the rope.
   - Every other logger (engine.io and socket.io through ``chatserver.lib``,
     aiohttp, aiosqlite, asyncio, redis, urllib3, py.warnings, …): never a
     value. Dropping the arguments is not enough: engine.io builds
     "Invalid session {sid}" from a query parameter with an f-string, so the
     message itself can carry an attacker's text. A library's message is
     therefore kept only when it is a whole string literal in the library's
     own source, on the line that logged it or the next few. engine.io's few
     messages built from a request's values are written in a fixed shape
     with the value left out ("Invalid session %s"); any other message is
     replaced by where it was logged ("message not shown:
     aiohttp/web_protocol.py:545 log_debug").
   - Exception text and stacks are dropped; the exception's type stays.
2. ``OneLineFormatter`` escapes CR, LF and every other control, line- or
   paragraph-separator and bidi character in the finished line, and caps its
   length, so no record can make two lines or fake the start of one.
3. ``RateLimiter`` writes at most ``LOG_BURST`` lines of one kind (logger,
   level, template) per ``LOG_WINDOW_SECS`` and counts the rest; one summary
   line says how many were left out.

aiosqlite is held at WARNING (at DEBUG it logs every query with its
parameters; without them a line per query is noise), and the aiohttp access
log is off (it writes client addresses).
"""

from __future__ import annotations

import linecache
import logging
import re
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import TextIO

LIBRARY_LOGGER = "chatserver.lib"  # handed to socket.io and engine.io
OWN_LOGGER = "chatserver"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Loggers of the libraries the process uses. The handler guards every logger;
# these also get the guard on the logger itself, so a handler someone else
# attaches to one of them (a test's capture, a debugging session) still sees
# no values.
LIBRARY_LOGGERS = (
    LIBRARY_LOGGER, "engineio", "engineio.server", "engineio.client", "socketio",
    "socketio.server", "socketio.client", "aiohttp", "aiohttp.access", "aiohttp.client",
    "aiohttp.internal", "aiohttp.server", "aiohttp.web", "aiohttp.websocket", "aiosqlite",
    "asyncio", "concurrent.futures", "redis", "urllib3", "py.warnings",
)
# Libraries whose lines below WARNING say nothing useful once their values
# are gone: aiosqlite logs "executing <the query and its parameters>" twice
# per query at DEBUG.
QUIET_BELOW_WARNING = ("aiosqlite",)

# Rate limit. Ten lines of one kind a minute are enough to see that
# something repeats and what it is; more only repeats it. At that rate one
# kind writes at most ~11 lines a minute (the summary included) however
# hard a client pushes: 20 000 malformed frames in 2 s were 20 000 ERROR
# lines, and a saturation run wrote 7.5 MB of one socket.io warning in two
# minutes. A window of a minute keeps the summaries rare and still timely.
LOG_BURST = 10
LOG_WINDOW_SECS = 60.0
# Kinds tracked at once. A kind's template never holds a value (a library's
# literal, a code location, or one of our own format strings), so the kinds
# are bounded by the code: a few hundred at most. The bound keeps memory
# fixed even so; the oldest window makes room (its summary is written first).
LOG_MAX_KINDS = 1000
# A line longer than this is cut: no legitimate line comes near it, and a cut
# keeps one runaway value from filling a disk line by line.
MAX_LINE_CHARS = 2000

# How many lines after the logging call's first line may hold its literal (a
# call split over lines reports its first line).
_CALL_LINES = 4

_PATTERNS = [
    re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"),  # IPv4
    re.compile(r"\b(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}\b"),  # IPv6-ish
    re.compile(r"[A-Za-z0-9_\-+/]{20,}={0,2}"),  # base64/hex tokens, keys, ciphertext
]
REDACTED = "[redacted]"
PYTHON_WARNING = "a Python warning (its text is not shown)"
# C0 and C1 controls (CR, LF, ESC, NEL, …), line and paragraph separators,
# bidi marks, overrides and isolates, and the BOM: each could end a line or
# make a log viewer show something other than what is there.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e"
                     "\u2066-\u2069\ufeff]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_GUARDED = "chatserver_guarded"  # set on a record once Guard has reduced it
_TEMPLATE = "chatserver_template"  # the value-free text the rate limit keys on


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def one_line(text: str) -> str:
    """``text`` with every character that could break or disguise a line escaped."""
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def is_own(name: str) -> bool:
    """Our own code's loggers; ``chatserver.lib`` belongs to the libraries."""
    if name == LIBRARY_LOGGER or name.startswith(LIBRARY_LOGGER + "."):
        return False
    return name == OWN_LOGGER or name.startswith(OWN_LOGGER + ".")


def _literal_in_source(path: str, lineno: int, text: str) -> bool:
    """Whether ``text`` is a whole string literal on the logging call's lines.

    Text that is written out in a library's source carries no value from a
    request; an f-string, a concatenation or a message handed on from another
    function is not found and so is not kept."""
    if not text or lineno <= 0:
        return False
    quoted = (f"'{text}'", f'"{text}"')
    for n in range(lineno, lineno + _CALL_LINES):
        line = linecache.getline(path, n)
        if any(q in line for q in quoted):
            return True
    return False


# engine.io hands some messages to ``_log_error_once`` built from a request's
# values (the Origin header, the ``sid`` query parameter), so the literal check
# cannot find them. Their fixed shapes, with the value left out, say what
# went wrong (a wrong ``public_origin`` shows up here first).
_ONCE_SUFFIX = " (further occurrences of this error will be logged with level INFO)"
_ONCE_FIXED = frozenset({
    "Invalid transport", "Invalid JSONP index number", "Invalid websocket upgrade",
    "The client is using an unsupported version of the Socket.IO or Engine.IO protocols",
})
_ONCE_SHAPES = (  # prefix, suffix, what is written
    ("", " is not an accepted origin.", "%s is not an accepted origin."),
    ("Invalid session ", "", "Invalid session %s"),
    ("Socket for session ", " is not connected", "Socket for session %s is not connected"),
    ("Unexpected HTTP request for session ", "", "Unexpected HTTP request for session %s"),
    ("Invalid transport for session ", "", "Invalid transport for session %s"),
)


def _known_shape(record: logging.LogRecord) -> str | None:
    msg = record.msg
    if record.funcName != "_log_error_once" or not isinstance(msg, str):
        return None
    suffix = _ONCE_SUFFIX if msg.endswith(_ONCE_SUFFIX) else ""
    msg = msg.removesuffix(_ONCE_SUFFIX)
    if msg in _ONCE_FIXED:
        return msg + suffix
    for head, tail, shown in _ONCE_SHAPES:
        if msg.startswith(head) and msg.endswith(tail) and len(msg) > len(head) + len(tail):
            return shown + suffix
    return None


def _location(record: logging.LogRecord) -> str:
    where = "/".join(PurePath(record.pathname).parts[-2:]) or "unknown"
    return f"message not shown: {where}:{record.lineno} {record.funcName}"


def library_text(record: logging.LogRecord) -> str:
    """What a library's record may say: its literal template, a known fixed
    message, or where it was logged."""
    if record.name == "py.warnings":
        # Its only text is the formatted warning, which can name a peer's
        # address (an unclosed socket's ResourceWarning).
        return PYTHON_WARNING
    msg = record.msg
    if isinstance(msg, str) and _literal_in_source(record.pathname, record.lineno, msg):
        return msg
    return _known_shape(record) or _location(record)


def reduce(record: logging.LogRecord) -> None:
    """Reduce ``record`` in place to what a log line may hold (once)."""
    if getattr(record, _GUARDED, False):
        return
    if is_own(record.name):
        template = str(record.msg)
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            text = template
        text = redact(text)
    else:
        template = text = library_text(record)
    if record.exc_info and record.exc_info[0] is not None:
        # Exception text may quote payloads, queries or addresses; keep the type.
        text = f"{text} [{record.exc_info[0].__name__}]"
    record.msg = text
    record.args = None
    record.exc_info = None
    record.exc_text = None
    record.stack_info = None
    setattr(record, _TEMPLATE, template)
    setattr(record, _GUARDED, True)


class Guard(logging.Filter):
    """On the handler (every record) and on each library logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        reduce(record)
        return True


class OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = one_line(super().format(record))
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + " [cut]"
        return line


@dataclass
class _Window:
    opened: float  # monotonic
    first_created: float  # wall clock, for the summary
    name: str
    levelno: int
    template: str
    written: int = 1
    suppressed: int = 0


class RateLimiter:
    """At most ``burst`` records of one kind per ``window_secs``; the rest counted.

    Windows are kept in the order they opened; as every window is equally
    long, the ones that have ended are at the front, so each record costs O(1)
    amortised. Not thread-safe on its own: ``SafeHandler`` calls it under the
    handler's lock."""

    def __init__(self, burst: int = LOG_BURST, window_secs: float = LOG_WINDOW_SECS,
                 max_kinds: int = LOG_MAX_KINDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if burst < 1 or window_secs <= 0 or max_kinds < 1:
            raise ValueError("burst and max_kinds must be ≥ 1, window_secs > 0")
        self.burst, self.window_secs, self.max_kinds = burst, window_secs, max_kinds
        self._clock = clock
        self._windows: OrderedDict[tuple[str, int, str], _Window] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    def admit(self, record: logging.LogRecord) -> tuple[list[logging.LogRecord], bool]:
        """The summaries due now, and whether ``record`` may be written."""
        now = self._clock()
        due = self._expire(now)
        template = getattr(record, _TEMPLATE, None)
        if not isinstance(template, str):
            template = str(record.msg)
        key = (record.name, record.levelno, template)
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) >= self.max_kinds:
                _, oldest = self._windows.popitem(last=False)
                due += self._summary(oldest)
            self._windows[key] = _Window(now, record.created, record.name, record.levelno,
                                         template)
            return due, True
        if window.written < self.burst:
            window.written += 1
            if window.written == self.burst:
                record.msg = (f"{record.msg} [similar lines are counted, not written, "
                              f"until {self.window_secs:.0f} s after the first]")
            return due, True
        window.suppressed += 1
        return due, False

    def drain(self) -> list[logging.LogRecord]:
        """Every pending summary, now (at shutdown)."""
        due = [s for window in self._windows.values() for s in self._summary(window)]
        self._windows.clear()
        return due

    def _expire(self, now: float) -> list[logging.LogRecord]:
        due: list[logging.LogRecord] = []
        while self._windows:
            window = next(iter(self._windows.values()))
            if window.opened + self.window_secs > now:
                break
            self._windows.popitem(last=False)
            due += self._summary(window)
        return due

    def _summary(self, window: _Window) -> list[logging.LogRecord]:
        if not window.suppressed:
            return []
        since = time.strftime("%H:%M:%S", time.localtime(window.first_created))
        text = (f"suppressed {window.suppressed} similar lines in the {self.window_secs:.0f} s "
                f"from {since}: {window.template}")
        record = logging.LogRecord(window.name, window.levelno, __file__, 0, text, None, None)
        setattr(record, _GUARDED, True)
        return [record]


class SafeHandler(logging.StreamHandler[TextIO]):
    """The one handler: guard, rate limit, one line per record."""

    def __init__(self, stream: TextIO | None = None, limiter: RateLimiter | None = None) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.limiter = limiter if limiter is not None else RateLimiter()
        self.addFilter(Guard())
        self.setFormatter(OneLineFormatter(FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        # Called by Handler.handle under self.lock, after the filters (Guard).
        due, allowed = self.limiter.admit(record)
        for summary in due:
            super().emit(summary)
        if allowed:
            super().emit(record)

    def close(self) -> None:
        self.acquire()
        try:
            for summary in self.limiter.drain():
                super().emit(summary)
        finally:
            self.release()
        super().close()


def configure(level: str, stream: TextIO | None = None,
              limiter: RateLimiter | None = None) -> SafeHandler:
    root = logging.getLogger()
    root.setLevel(level.upper())
    for old in [h for h in root.handlers if isinstance(h, SafeHandler)]:
        root.removeHandler(old)
        old.close()  # writes its pending summaries
    handler = SafeHandler(stream, limiter)
    root.addHandler(handler)
    # A logger that does not propagate and has no handler of its own would
    # otherwise reach stderr through logging's unguarded last resort.
    logging.lastResort = handler
    # Warnings (a ResourceWarning names a socket's peer address) become
    # records of "py.warnings" and so pass the guard instead of going to stderr.
    logging.captureWarnings(True)
    for name in LIBRARY_LOGGERS:
        _guard(logging.getLogger(name))
    for name in QUIET_BELOW_WARNING:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").disabled = True  # it writes client addresses
    # Library records keep no values, so even DEBUG is safe; at INFO engine.io
    # would write a line per packet, so below DEBUG it stays at WARNING.
    lib_level = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    library_logger().setLevel(lib_level)
    return handler


def _guard(logger: logging.Logger) -> None:
    if not any(isinstance(f, Guard) for f in logger.filters):
        logger.addFilter(Guard())


def library_logger() -> logging.Logger:
    """The one logger handed to socket.io and engine.io (never ``True``)."""
    logger = logging.getLogger(LIBRARY_LOGGER)
    _guard(logger)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
    return logger
