"""The queue round (every queue_push_interval_secs): coalesced pushes of the
counsellors' views (views.py) and of youths' positions, bounded per round
however large the queue (docs/design/queue.md, docs/performance.md)."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from chatserver.domain.chat import queueing, views
from chatserver.domain.events import Emit, Outcome

if TYPE_CHECKING:
    from chatserver.domain.chat.service import ChatService

# A queue position this close to the front is pushed at once; up to
# NEAR_FRONT_OF_QUEUE at most every queue_position_min_interval_secs, and
# further back at most every queue_position_far_interval_secs: a claim shifts
# everyone, and at 10 000 waiting a push per youth every 5 s cost more than the
# chat itself (docs/performance.md, "National evening peak").
FRONT_OF_QUEUE = 3
NEAR_FRONT_OF_QUEUE = 20
# Far-back places a round looks at, per lane, from a cursor that goes round
# the far part of the queue: a round costs O(log n + this) per lane, not O(n)
# (at 10 000 waiting, scanning everyone each second stalled the loop ~10 ms),
# and youths who arrived together fall due in different rounds instead of all
# at once. At 10 000 waiting each far youth is looked at every ~20 s, so its
# pushes come every ~40 s (30 s at the least).
FAR_SCAN_PER_ROUND = 500


def queue_updates(chat: ChatService) -> Outcome:
    """Coalesced queue pushes: positions to youths whose place changed,
    a snapshot to on-duty counsellors. Called every queue_push_interval_secs."""
    out = Outcome()
    if not (chat._queue_dirty or chat._push_owed):
        return out
    changed = chat._queue_dirty
    if changed:
        chat._queue_version += 1  # a new state to publish
    chat._queue_dirty = chat._push_owed = False
    now = chat.clock.now()
    # Snapshots first: the transport sends a round in slices, and a view
    # sent after a later claim would show that youth as still waiting.
    views.push_staff_snapshots(chat, out, now)
    _push_positions(chat, out, now, changed)
    return out


def queue_push_current(chat: ChatService, emit: Emit) -> bool:
    """Whether a push from queue_updates() may still go. The transport sends
    a round in slices (docs/design/queue.md): a youth claimed or gone
    meanwhile must not get a position after that, nor one older than what a
    reply told them since (``choose`` moves a youth and answers with the new
    place). A position one place off after someone else's claim is
    corrected by the next round; counsellors' snapshots are views and go."""
    if emit.event != "queue" or "position" not in emit.payload:
        return True
    conv = chat.conversations.get(str(emit.payload.get("conversation")))
    if conv is None or conv.id not in chat.queue or conv.last_pushed is None:
        return False
    return conv.last_pushed[:2] == (emit.payload["position"], emit.payload["eta_secs"])


def _push_positions(chat: ChatService, out: Outcome, now: float, changed: bool) -> None:
    near_gap = chat.settings.queue_position_min_interval_secs
    far_gap = chat.settings.queue_position_far_interval_secs
    near = NEAR_FRONT_OF_QUEUE
    lanes = chat.queue.lanes()
    for lane in lanes:  # the fronts of all lanes before any far-back window
        for conv_id, position in chat.queue.iter_range(lane, 0, near):
            _push_position(chat, out, conv_id, position, now, near_gap)
    far_scan: dict[str, tuple[int, int]] = {}
    for lane in lanes:
        far = chat.queue.lane_length(lane) - near
        if far <= 0:
            continue
        cursor, unscanned = chat._far_scan.get(lane, (0, far))
        if changed:
            unscanned = far  # every far-back place is to be looked at again
        first = cursor % far
        take = min(far, FAR_SCAN_PER_ROUND)
        stop = min(far, first + take)
        window = itertools.chain(  # to the end of the lane, then round from the start
            chat.queue.iter_range(lane, near + first, near + stop),
            chat.queue.iter_range(lane, near, near + take - (stop - first)))
        for conv_id, position in window:
            _push_position(chat, out, conv_id, position, now, far_gap)
        # Until one whole pass since the last change, later rounds owe a look
        # at the rest; after it a still queue costs nothing.
        unscanned -= take
        far_scan[lane] = ((first + take) % far, max(unscanned, 0))
        if unscanned > 0:
            chat._push_owed = True
    chat._far_scan = far_scan  # lanes emptied or short again are forgotten


def _push_position(chat: ChatService, out: Outcome, conv_id: str, position: int, now: float,
                   gap: float) -> None:
    conv = chat.conversations[conv_id]
    eta = queueing.eta(chat, position)
    last = conv.last_pushed
    if last is not None:
        if last[0] == position and last[1] == eta:
            return
        if position > FRONT_OF_QUEUE and now - last[2] < gap:
            chat._push_owed = True  # try again in a later round
            return
    youth = conv.youth()
    if youth is None or youth.conn is None:
        return
    conv.last_pushed = (position, eta, now)
    out.emit("queue", {"conversation": conv_id, "position": position, "eta_secs": eta},
             (youth.conn,))
