"""Counsellors on and off duty, and what that makes the service: open when
someone on duty has a console connected (``status`` is what a youth's page
is told before starting)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chatserver.domain.chat import views
from chatserver.domain.events import Outcome
from chatserver.domain.model import Counsellor, Role, StaffRef
from chatserver.errors import AtCapacity, NotAllowed, NotOnDuty

if TYPE_CHECKING:
    from chatserver.domain.chat.service import ChatService


def status(chat: ChatService) -> dict[str, Any]:
    svc = chat.settings.service
    return {
        "open": is_open(chat),
        "hours": _plain(svc.get("hours", {})),
        "alternatives": _plain(svc.get("alternatives", ())),
        "emergency": svc.get("emergency", "112"),
        "profile": _plain(svc.get("profile", {})),
    }


def is_open(chat: ChatService) -> bool:
    return any(c.on_duty and c.conns for c in chat.counsellors.values())


def on_duty(chat: ChatService, staff_id: int) -> bool:
    c = chat.counsellors.get(staff_id)
    return c is not None and c.on_duty and bool(c.conns)


def with_room(chat: ChatService, staff: StaffRef) -> Counsellor:
    """``staff`` on duty with room for one more conversation (a claim, an
    accepted transfer); NotOnDuty or AtCapacity otherwise."""
    c = chat.counsellors.get(staff.id)
    if c is None or not c.on_duty:
        raise NotOnDuty()
    if c.load >= staff.capacity:
        raise AtCapacity()
    return c


def duty_payload(c: Counsellor) -> dict[str, Any]:
    return {"on": c.on_duty, "load": c.load, "capacity": c.staff.capacity}


def set_duty(chat: ChatService, staff: StaffRef, on: bool) -> Outcome:
    if staff.role != Role.COUNSELLOR.value:
        raise NotAllowed()
    c = chat.counsellors.get(staff.id)
    if c is None or not c.conns:
        raise NotAllowed()
    changed = c.on_duty != on
    c.on_duty = on
    chat._queue_dirty = True
    out = Outcome(reply={"on": on})
    out.emit("duty", duty_payload(c), tuple(c.conns))
    if on:
        out.emit("queue", views.staff_snapshot(chat, c, c.conns), tuple(c.conns))
    if changed:
        out.audit(staff.username, "duty_on" if on else "duty_off")
    return out


def duty_timeout(chat: ChatService, staff_id: int, token: float, out: Outcome) -> None:
    """A counsellor's last console has been gone past the grace period."""
    c = chat.counsellors.get(staff_id)
    if c is None or c.conns or c.offline_since != token:
        return
    if c.on_duty:
        c.on_duty = False
        chat._queue_dirty = True
        out.audit(c.staff.username, "duty_off", reason="disconnected")


def _plain(value: Any) -> Any:
    """Config data (read-only mappings/tuples) as JSON-ready dicts/lists."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
