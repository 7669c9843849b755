"""Where the chat's live state lives: in this process (the embedded default),
or replicated on every node through one ordered log in Redis.

Design: docs/design/live-state.md and docs/decisions/0011. The rules stay in
chatserver/domain/chat/, written once; this package decides only
how a call reaches them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatserver.live.base import Live
from chatserver.live.memory import MemoryLive

if TYPE_CHECKING:
    from chatserver.domain.conversations import ChatService
    from chatserver.domain.sessions import SessionStore
    from chatserver.domain.stats import StatsCounter
    from chatserver.settings import Settings

__all__ = ["Live", "MemoryLive", "open_live"]


def open_live(settings: Settings, chat: ChatService, sessions: SessionStore,
              stats: StatsCounter) -> Live:
    """The one place that names a live-state backend."""
    if not settings.redis_url:
        return MemoryLive(chat, sessions)
    from chatserver.live.replicated import ReplicatedLive  # redis is imported only here

    return ReplicatedLive(settings, chat, sessions, stats)
