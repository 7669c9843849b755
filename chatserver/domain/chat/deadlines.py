"""The one heap of deadlines (grace, presence, pause, duty, personal wait,
transfer offer, invite). Each carries a token, the time its condition began;
``timeouts.tick`` pops the due ones and ignores those whose token no longer
matches (the member came back)."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatserver.domain.chat.service import ChatService


def schedule(chat: ChatService, when: float, kind: str, conv_id: str, subject: str,
             token: float) -> None:
    # The counter orders deadlines due at the same time in the order they were
    # set, on every node alike (it is an int: a snapshot of the state holds it).
    heapq.heappush(chat._deadlines,
                   (when, chat._deadline_counter, kind, conv_id, subject, token))
    chat._deadline_counter += 1


def due(chat: ChatService, now: float) -> Iterator[tuple[str, str, str, float]]:
    """(kind, conversation, subject, token) of each deadline that has passed,
    earliest first; each is taken off the heap as it is yielded."""
    while chat._deadlines and chat._deadlines[0][0] <= now:
        _, _, kind, conv_id, subject, token = heapq.heappop(chat._deadlines)
        yield kind, conv_id, subject, token
