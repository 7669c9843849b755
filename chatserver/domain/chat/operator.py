"""What the operator view shows: the queue's length and waits, conversations
by state, who is on duty, the conversations left while waiting today, and a
sampled history of the queue's length."""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING, Any

from chatserver.domain.clock import to_ms
from chatserver.domain.model import Role, State

if TYPE_CHECKING:
    from chatserver.domain.chat.service import ChatService

OPS_HISTORY_SAMPLES = 360  # 6 hours of 1-minute samples


def ops_snapshot(chat: ChatService) -> dict[str, Any]:
    now = chat.clock.now()
    waits = sorted(now - (chat.queue.arrived(cid) or now) for cid, _ in chat.queue.iter_all())
    states = [c.state for c in chat.conversations.values()]
    return {
        "at": to_ms(now),
        "queue_length": len(chat.queue),
        "longest_wait_secs": int(waits[-1]) if waits else 0,
        "median_wait_secs": int(statistics.median(waits)) if waits else 0,
        "active": sum(s is State.ACTIVE for s in states),
        "paused": sum(s is State.PAUSED for s in states),
        "abandoned_today": chat._abandoned.get(_day(now), 0),
        "counsellors": [
            {"alias": c.staff.alias, "on_duty": c.on_duty and bool(c.conns),
             "load": c.load, "capacity": c.staff.capacity}
            for c in chat.counsellors.values() if c.staff.role == Role.COUNSELLOR.value
        ],
        "history": [{"at": at, "queue_length": n} for at, n in chat._history],
    }


def sample_history(chat: ChatService) -> None:
    chat._history.append((to_ms(chat.clock.now()), len(chat.queue)))


def note_abandoned(chat: ChatService, now: float) -> None:
    """A conversation ended while waiting: counted for today (UTC) only."""
    day = _day(now)
    chat._abandoned = {day: chat._abandoned.get(day, 0) + 1}


def _day(t: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(t))
