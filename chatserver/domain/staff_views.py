"""Which queue view each console holds, and what brings it up to date.

A console gets one whole view (``queue``) when it connects, goes on duty or
asks (``queue_sync``), then only the changes (``queue_delta``) from the view
it holds to the newest (docs/protocol.md, "Queue views"). At a national peak
a whole view was ~10.6 KB to each of 500 consoles about 160 times a second
(docs/performance.md); most rounds change a few entries.

Views are kept by key: ``"shared"`` for every counsellor with nobody in their
personal lane (built once a round, and one delta event per starting version,
encoded once, for all of them), ``"personal:<staff id>"`` for one counsellor
with returning youths waiting (nobody else's console ever holds it); either
with ``":at_capacity"`` for a counsellor who is full, listing only the front.
A view is kept while some console holds it or it is its key's newest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from chatserver.domain.events import Conn
from chatserver.queue.view import Entry, View, delta, make_view

SHARED = "shared"
AT_CAPACITY = ":at_capacity"  # a key's view listing only its front (counsellor full)


class StaffViews:
    def __init__(self, deltas: bool = True) -> None:
        self.deltas = deltas  # False: a whole view every time (for measurements)
        self._version = 0
        self._newest: dict[str, View] = {}  # key -> its newest view
        self._views: dict[int, View] = {}  # version -> view, while held or newest
        self._held: dict[Conn, int] = {}  # console -> version of the view it holds

    def publish(self, key: str, entries: Sequence[Entry], total: int, offline: int) -> View:
        """The newest view of ``key``: the one before if nothing changed, else a
        new version."""
        newest = self._newest.get(key)
        by_id = {str(e["conversation"]): e for e in entries}
        if newest is not None and newest.same(tuple(by_id), by_id, total, offline):
            return newest
        self._version += 1
        view = make_view(self._version, entries, total, offline)
        self._newest[key] = view
        self._views[view.version] = view
        return view

    def snapshot(self, key: str, view: View, conns: Iterable[Conn]) -> dict[str, Any]:
        """The whole ``view`` of ``key`` for ``conns``, who hold it from now on."""
        conns = list(conns)
        view = self._not_older(key, view, conns)
        for conn in conns:
            self._held[conn] = view.version
        return view.snapshot()

    def push(self, key: str, view: View, conns: Iterable[Conn]
             ) -> list[tuple[dict[str, Any], list[Conn]]]:
        """(payload, recipients) that bring each of ``conns`` to ``view`` (of
        ``key``): nothing for a console that holds it, one delta (a payload
        with ``from_v``) per starting version, shared by every console at that
        version, and the whole view for a console whose view is no longer
        known or whose entries moved between lanes."""
        conns = list(conns)
        view = self._not_older(key, view, conns)
        by_start: dict[int | None, list[Conn]] = {}
        for conn in conns:
            held = self._held.get(conn)
            if held != view.version:
                by_start.setdefault(held, []).append(conn)
        sends: list[tuple[dict[str, Any], list[Conn]]] = []
        whole: list[Conn] = []  # one event, encoded once, for all who get the view
        for start, to in by_start.items():
            base = self._views.get(start) if start is not None and self.deltas else None
            change = delta(base, view) if base is not None else None
            if change is not None and view.order and \
                    len(change["added"]) + len(change["changed"]) >= len(view.order):
                change = None  # every entry new or changed: the whole view is smaller
            if change is None:
                whole.extend(to)
            else:
                sends.append((change, to))
            for conn in to:
                self._held[conn] = view.version
        if whole:
            sends.insert(0, (view.snapshot(), whole))
        return sends

    def _not_older(self, key: str, view: View, conns: list[Conn]) -> View:
        # A console that moves between keys (its personal lane fills, then
        # empties) may hold a newer version than the other key's newest: the
        # same view is published again under a new version, so that versions
        # only ever grow on every console and an older one is always stale.
        if all(self._held.get(c, -1) <= view.version for c in conns):
            return view
        self._version += 1
        renewed = View(self._version, view.order, view.entries, view.total, view.offline)
        self._newest[key] = renewed
        self._views[renewed.version] = renewed
        return renewed

    def forget(self, conn: Conn) -> None:
        self._held.pop(conn, None)

    def held(self, conn: Conn) -> int | None:
        return self._held.get(conn)

    def drop_key(self, key: str) -> None:
        """``key`` has no view any more (a personal lane emptied)."""
        self._newest.pop(key, None)

    def prune(self) -> None:
        """Forget every view no console holds and no key has as its newest."""
        keep = set(self._held.values()) | {v.version for v in self._newest.values()}
        if len(keep) < len(self._views):
            self._views = {v: view for v, view in self._views.items() if v in keep}

    def newest(self) -> Mapping[str, View]:
        return self._newest
