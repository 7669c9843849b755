"""The waiting queue: lanes of conversations ordered by (priority, arrival).

Design: docs/design/queue.md. Every operation is O(log n) (a SortedList per
lane plus a dict from conversation id to its key), so claims stay flat from
100 to 10 000 waiting youths. Pure data structure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sortedcontainers import SortedList

# Lower sorts first. Returning youths (in their counsellor's personal lane) and
# the youth's own "urgent" choice go before normal arrivals; never derived from
# content.
PRIORITY_URGENT = 0
PRIORITY_NORMAL = 1

GENERAL_LANE = "general"


@dataclass(frozen=True, order=True, slots=True)
class QueueKey:
    priority: int
    arrived: float
    tiebreak: int  # arrival counter: equal timestamps keep insertion order
    conversation: str


class WaitingQueue:
    def __init__(self) -> None:
        self._lanes: dict[str, SortedList] = {}
        self._where: dict[str, tuple[str, QueueKey]] = {}
        # (lane, tag) -> the keys of that lane's conversations with that tag (a
        # language code): take next finds the first youth who speaks one of a
        # counsellor's languages in O(log n), not by walking the lane.
        self._tagged: dict[tuple[str, str], SortedList] = {}
        self._tags: dict[str, str] = {}
        self._counter = 0  # an int, not itertools.count: a snapshot can hold it

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, conversation: str) -> bool:
        return conversation in self._where

    def add(self, conversation: str, arrived: float, *, urgent: bool = False,
            lane: str = GENERAL_LANE, tag: str | None = None) -> None:
        if conversation in self._where:
            raise ValueError("already queued")
        key = QueueKey(PRIORITY_URGENT if urgent else PRIORITY_NORMAL, arrived,
                       self._counter, conversation)
        self._counter += 1
        self._lanes.setdefault(lane, SortedList()).add(key)
        self._where[conversation] = (lane, key)
        if tag is not None:
            self._tagged.setdefault((lane, tag), SortedList()).add(key)
            self._tags[conversation] = tag

    def remove(self, conversation: str) -> bool:
        found = self._where.pop(conversation, None)
        if found is None:
            return False
        lane, key = found
        keys = self._lanes[lane]
        keys.remove(key)
        if not keys and lane != GENERAL_LANE:
            del self._lanes[lane]  # personal lanes come and go; a round walks the lanes
        tag = self._tags.pop(conversation, None)
        if tag is not None:
            tagged = self._tagged[(lane, tag)]
            tagged.remove(key)
            if not tagged:
                del self._tagged[(lane, tag)]
        return True

    def position(self, conversation: str) -> int:
        """1-based place in its lane; 0 if not queued."""
        found = self._where.get(conversation)
        if found is None:
            return 0
        lane, key = found
        return int(self._lanes[lane].index(key)) + 1

    def arrived(self, conversation: str) -> float | None:
        found = self._where.get(conversation)
        return None if found is None else found[1].arrived

    def priority(self, conversation: str) -> int | None:
        found = self._where.get(conversation)
        return None if found is None else found[1].priority

    def iter_tagged(self, lane: str, tag: str) -> Iterator[tuple[str, int]]:
        """(conversation, priority) of a lane's conversations with ``tag``, in
        queue order. O(log n) to start, O(1) per step."""
        for key in self._tagged.get((lane, tag), ()):
            yield key.conversation, key.priority

    def iter_lane(self, lane: str = GENERAL_LANE) -> Iterator[str]:
        """Conversations in queue order. O(1) per step."""
        for key in self._lanes.get(lane, ()):
            yield key.conversation

    def lanes(self) -> list[str]:
        return list(self._lanes)

    def iter_range(self, lane: str, start: int, stop: int) -> Iterator[tuple[str, int]]:
        """(conversation, position) for the 0-based places start..stop-1 of a
        lane. O(log n + k): a round of queue pushes looks at a window of the
        queue, never the whole of it."""
        keys = self._lanes.get(lane)
        if keys is None:
            return
        for i, key in enumerate(keys.islice(start, stop), start=start + 1):
            yield key.conversation, i

    def iter_all(self) -> Iterator[tuple[str, int]]:
        """(conversation, position) for every queued conversation, lane by lane."""
        for keys in self._lanes.values():
            for i, key in enumerate(keys, start=1):
                yield key.conversation, i

    def lane_length(self, lane: str = GENERAL_LANE) -> int:
        return len(self._lanes.get(lane, ()))
