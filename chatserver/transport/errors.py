"""The one place where a ChatError becomes what a client sees."""

from __future__ import annotations

from typing import Any

from chatserver.errors import ChatError


def error_reply(exc: ChatError) -> dict[str, Any]:
    reply: dict[str, Any] = {"ok": False, "error": exc.code}
    if exc.info:
        reply["info"] = exc.info
    return reply


def internal_reply() -> dict[str, Any]:
    return {"ok": False, "error": ChatError.code}
