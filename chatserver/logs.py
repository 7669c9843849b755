"""Logging that cannot carry content, secrets or addresses, at any level.

Two guards (docs/threat-model.md, promise 1 and 2):
- Library loggers (engine.io, socket.io, aiohttp) get ``TemplateOnly``: a record
  keeps its format string and drops its arguments and exception text, because
  engine.io logs every packet's data at INFO ("Received packet %s data %s").
- Every handler gets ``Redact``: the final line is scrubbed of anything shaped
  like an address, a token, a key or ciphertext. Our own code logs no such
  thing; this is the net under the rope.
"""

from __future__ import annotations

import logging
import re
import sys

LIBRARY_LOGGER = "chatserver.lib"

_PATTERNS = [
    re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"),  # IPv4
    re.compile(r"\b(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}\b"),  # IPv6-ish
    re.compile(r"[A-Za-z0-9_\-+/]{20,}={0,2}"),  # base64/hex tokens, keys, ciphertext
]
REDACTED = "[redacted]"


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


class Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            # Exception text may quote payloads; keep only the type.
            record.msg = f"{record.msg} [{record.exc_info[0].__name__}]"
            record.exc_info = None
            record.exc_text = None
        record.stack_info = None
        return True


class TemplateOnly(logging.Filter):
    """Keep the format string, drop the values (they may be packet data)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = str(record.msg)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            record.msg = f"{record.msg} [{record.exc_info[0].__name__}]"
            record.exc_info = None
            record.exc_text = None
        return True


def configure(level: str) -> None:
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in list(root.handlers):
        if getattr(handler, "_chatserver", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(Redact())
    handler._chatserver = True  # type: ignore[attr-defined]  # marks our own handler
    root.addHandler(handler)
    for name in ("aiohttp", "aiohttp.server", "aiohttp.web", "aiohttp.internal",
                 "aiohttp.access", "engineio", "socketio"):
        lib = logging.getLogger(name)
        if not any(isinstance(f, TemplateOnly) for f in lib.filters):
            lib.addFilter(TemplateOnly())
    logging.getLogger("aiohttp.access").disabled = True  # it writes client addresses
    # The socket.io/engine.io logger is template-only, so even DEBUG is safe;
    # at INFO it would log a line per packet, so below DEBUG it stays at WARNING.
    lib_level = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    library_logger().setLevel(lib_level)


def library_logger() -> logging.Logger:
    """The one logger handed to socket.io and engine.io (never ``True``)."""
    logger = logging.getLogger(LIBRARY_LOGGER)
    if not any(isinstance(f, TemplateOnly) for f in logger.filters):
        logger.addFilter(TemplateOnly())
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)
    return logger
