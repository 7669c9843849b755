"""A socket.io client manager whose disconnect does not scan every room.

python-socketio's ``BaseManager.basic_disconnect`` (5.18) finds a client's
rooms by copying the namespace's whole room table and testing membership in
every room; ``get_rooms`` scans the same way. Every client has its own sid
room, so the table holds one room per connection and each disconnect costs
O(connections): 2.07 ms at 10 000 connections, 17 % of the server at peak and
~20 s of bookkeeping in a reconnect storm (docs/performance.md; decision
docs/decisions/0005-socketio-disconnect-cost.md, option 2).

A client is only ever in three kinds of room: ``None`` (everyone in the
namespace), its own sid room, and *custom* rooms entered with ``enter_room``.
Chatserver uses no custom rooms, so instead of a reverse index ``sid → rooms``
(which would cost memory per connection, the thing we are trying to cut) we
keep, per namespace, the names of the custom rooms that exist. A disconnect
looks only at those, the sid room and ``None``: O(custom rooms in the
namespace), which is O(1) for chatserver. An application that put every
client in a custom room of its own would be back to O(connections).

The subclass copies the library's disconnect bookkeeping and relies on the
layout of ``self.rooms`` (``rooms[namespace][room]`` is a bidict
``sid → eio_sid``), so pyproject.toml pins python-socketio's minor version and
tests/unit/test_room_manager.py drives this manager and the stock one with the
same random operations and checks they end in the same state.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import socketio


class RoomIndexedManager(socketio.AsyncManager):  # type: ignore[misc]  # socketio is untyped
    """``socketio.AsyncManager`` with disconnect and ``get_rooms`` that do not
    scan the namespace's room table. Use as
    ``socketio.AsyncServer(..., client_manager=RoomIndexedManager())``."""

    def __init__(self) -> None:
        super().__init__()
        # namespace -> custom room names that currently exist in
        # self.rooms[namespace] (a dict for a stable order; values unused).
        # Holds no entry per connection: only rooms that are neither None nor
        # entered by their own sid, and only while they exist.
        self._custom_rooms: dict[str, dict[Hashable, None]] = {}

    def basic_enter_room(
        self, sid: str, namespace: str, room: Hashable, eio_sid: str | None = None
    ) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        # pre_connect enters None and room == sid; anything else is custom.
        # Invariant: every room other than None that contains a sid is either
        # that sid's own room or listed in _custom_rooms.
        if room is not None and room != sid:
            self._custom_rooms.setdefault(namespace, {})[room] = None

    def basic_leave_room(self, sid: str, namespace: str, room: Hashable) -> None:
        super().basic_leave_room(sid, namespace, room)
        self._forget_if_gone(namespace, room)

    def basic_close_room(self, room: Hashable, namespace: str) -> None:
        # The library closes a room by leaving it for each participant, which
        # already goes through basic_leave_room; checking again keeps the index
        # right should it ever delete the room directly.
        super().basic_close_room(room, namespace)
        self._forget_if_gone(namespace, room)

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        # Same as BaseManager.basic_disconnect (python-socketio 5.18) except
        # how the client's rooms are found: no copy and scan of the room table.
        if namespace not in self.rooms:
            return
        rooms = self._rooms_of(sid, namespace)
        if sid in self.rooms[namespace].get(None, ()):
            rooms.append(None)
        for room in rooms:
            self.basic_leave_room(sid, namespace, room)
        if sid in self.callbacks:
            del self.callbacks[sid]
        if namespace in self.pending_connect and sid in self.pending_connect[namespace]:
            self.pending_connect[namespace].remove(sid)
            if len(self.pending_connect[namespace]) == 0:
                del self.pending_connect[namespace]
        if namespace in self.pending_disconnect and sid in self.pending_disconnect[namespace]:
            self.pending_disconnect[namespace].remove(sid)
            if len(self.pending_disconnect[namespace]) == 0:
                del self.pending_disconnect[namespace]

    def get_rooms(self, sid: str, namespace: str) -> list[Hashable]:
        """The rooms a client is in (not None): the same rooms as the
        library's. The order may differ: the library lists them in room-table
        order, here the sid room comes first, then custom rooms in the order
        they were created. socket.io does not specify the order."""
        if namespace not in self.rooms:
            return []
        return self._rooms_of(sid, namespace)

    def _rooms_of(self, sid: str, namespace: str) -> list[Hashable]:
        """The rooms other than None that contain sid."""
        table = self.rooms[namespace]
        custom = self._custom_rooms.get(namespace, {})
        found: list[Hashable] = []
        # A sid normally never names a custom room; if one does (a room named
        # like a sid of another namespace, say), the custom loop covers it.
        if sid not in custom and sid in table.get(sid, ()):
            found.append(sid)
        found.extend(room for room in custom if sid in table.get(room, ()))
        return found

    def _forget_if_gone(self, namespace: str, room: Hashable) -> None:
        custom = self._custom_rooms.get(namespace)
        if custom is None or room not in custom:
            return
        if room not in self.rooms.get(namespace, {}):
            del custom[room]
            if not custom:
                del self._custom_rooms[namespace]
