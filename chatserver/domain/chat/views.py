"""The queue as counsellors see it: whose view a console holds (the shared one
or their own, whole or, at capacity, its front), what it lists, and the
round's pushes of the change from the view a console holds to the newest
(domain/staff_views.py keeps the versions)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from chatserver.domain.chat.names import PROFESSIONAL_LANE, personal_lane
from chatserver.domain.clock import to_ms
from chatserver.domain.events import Conn, Outcome
from chatserver.domain.model import Counsellor, Role, StaffRef
from chatserver.domain.staff_views import AT_CAPACITY, SHARED
from chatserver.errors import NotAllowed, NotOnDuty
from chatserver.queue.model import GENERAL_LANE
from chatserver.queue.view import View

if TYPE_CHECKING:
    from chatserver.domain.chat.service import ChatService


def queue_sync(chat: ChatService, staff: StaffRef, conn: Conn) -> Outcome:
    """A console that missed a change asks for its whole view again."""
    if staff.role != Role.COUNSELLOR.value:
        raise NotAllowed()
    c = chat.counsellors.get(staff.id)
    if c is None or conn not in c.conns or not c.on_duty:
        raise NotOnDuty()
    out = Outcome(reply={})
    out.emit("queue", staff_snapshot(chat, c, (conn,)), (conn,))
    return out


def view_key(chat: ChatService, c: Counsellor) -> str:
    """Which view ``c`` sees: the shared one or their own (returning youths
    waiting), whole or, at capacity, its front (domain/staff_views.py)."""
    own = personal_lane(c.staff.id)
    base = own if chat.queue.lane_length(own) else SHARED
    if base == SHARED:
        chat.staff_views.drop_key(own)
        chat.staff_views.drop_key(own + AT_CAPACITY)
    return base + AT_CAPACITY if c.load >= c.staff.capacity else base


def listed_max(chat: ChatService, staff_id: int) -> int | None:
    """How many entries ``staff_id``'s view lists now, if fewer than all."""
    c = chat.counsellors.get(staff_id)
    if c is None or c.load < c.staff.capacity:
        return None
    return chat.settings.staff_queue_at_capacity_max


def staff_view(chat: ChatService, c: Counsellor,
               shared: list[dict[str, Any]] | None = None) -> View:
    """The newest view of what ``c`` sees, published under its key."""
    key = view_key(chat, c)
    snap = staff_queue_snapshot(chat, c.staff.id, shared, listed_max(chat, c.staff.id))
    return chat.staff_views.publish(key, snap["entries"], snap["total"], snap["offline"])


def staff_snapshot(chat: ChatService, c: Counsellor, conns: Iterable[Conn]) -> dict[str, Any]:
    """The whole view for ``conns`` (a connect, duty on, a console's ask)."""
    return chat.staff_views.snapshot(view_key(chat, c), staff_view(chat, c), conns)


def staff_queue_snapshot(chat: ChatService, staff_id: int,
                         shared: list[dict[str, Any]] | None = None,
                         listed: int | None = None) -> dict[str, Any]:
    """What one counsellor sees: their own returning youths (flagged), then
    the general and professional lanes; the first ``listed`` of them if
    given. Nobody sees another's personal lane."""
    own = snapshot_entries(chat, (personal_lane(staff_id),))
    if shared is None:
        shared = snapshot_entries(chat, (GENERAL_LANE, PROFESSIONAL_LANE))
    visible = chat.queue.lane_length(GENERAL_LANE) + \
        chat.queue.lane_length(PROFESSIONAL_LANE) + len(own)
    lanes = (GENERAL_LANE, PROFESSIONAL_LANE, personal_lane(staff_id))
    offline = sum(1 for cid in chat.away
                  if cid in chat.queue and chat.conversations[cid].lane in lanes)
    entries = own + shared
    return {"total": visible, "offline": offline,
            "entries": entries if listed is None else entries[:listed]}


def snapshot_entries(chat: ChatService, lanes: tuple[str, ...]) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for lane in lanes:
        for conv_id in chat.queue.iter_lane(lane):
            if len(entries) >= chat.settings.staff_queue_snapshot_max:
                return entries
            conv = chat.conversations[conv_id]
            entries.append({
                "conversation": conv.id, "pseudonym": conv.pseudonym,
                "since": to_ms(conv.created_at), "language": conv.profile.language,
                "page_language": conv.profile.page_language,
                "age_band": conv.profile.age_band, "topic": conv.profile.topic,
                "urgent": conv.profile.urgent, "state": conv.state.value,
                "lane": "personal" if lane.startswith("personal:") else lane,
                "returning": lane.startswith("personal:"),
                "offline": conv.id in chat.away,
            })
    return entries


def push_staff_snapshots(chat: ChatService, out: Outcome, now: float) -> None:
    # Each console gets the change from the view it holds to the newest
    # (domain/staff_views.py). Most counsellors have nobody in their
    # personal lane and see the same view, built once: one event per
    # starting version goes to all of them, encoded once by the transport.
    # Per counsellor at most one push every queue_snapshot_min_gap_secs,
    # and while at capacity (they cannot claim) every
    # queue_snapshot_at_capacity_secs: a push then covers everything since
    # the one before, so what a console receives per second stays bounded
    # however often one youth changes something. At capacity the view
    # lists only the first staff_queue_at_capacity_max: at a peak most
    # counsellors are full, the first 50 places turn over within their 5 s,
    # and a whole list to each of them was most of the bytes
    # (docs/performance.md).
    at_capacity_gap = chat.settings.queue_snapshot_at_capacity_secs
    min_gap = chat.settings.queue_snapshot_min_gap_secs
    staff_views = chat.staff_views
    shared: list[dict[str, Any]] | None = None
    common: dict[str, tuple[View, list[Conn]]] = {}
    for c in chat.counsellors.values():
        if not (c.on_duty and c.conns) or c.snapshot_version == chat._queue_version:
            continue
        full = c.load >= c.staff.capacity
        gap = max(min_gap, at_capacity_gap if full else 0.0)
        if now - c.snapshot_at < gap:
            chat._push_owed = True
            continue
        c.snapshot_version = chat._queue_version
        if shared is None:
            shared = snapshot_entries(chat, (GENERAL_LANE, PROFESSIONAL_LANE))
        key = view_key(chat, c)
        if key not in common:
            view = staff_view(chat, c, shared)
            if not key.startswith(SHARED):
                sends = staff_views.push(key, view, c.conns)
                _emit_views(out, sends)
                if sends:
                    c.snapshot_at = now
                continue
            common[key] = (view, [])
        view, to = common[key]
        if any(staff_views.held(conn) != view.version for conn in c.conns):
            c.snapshot_at = now
            to.extend(c.conns)
    for key, (view, to) in common.items():
        _emit_views(out, staff_views.push(key, view, to))
    staff_views.prune()


def _emit_views(out: Outcome, sends: list[tuple[dict[str, Any], list[Conn]]]) -> None:
    for payload, to in sends:
        if "from_v" in payload:
            out.emit("queue_delta", payload, to)
        else:
            out.emit("queue", payload, to)
